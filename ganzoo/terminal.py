"""The consoles ganzoo prints to: rich's, except that output to a file or pipe is never cut at 80 columns."""

from __future__ import annotations

import rich.console
from rich.console import ConsoleDimensions

# A log file has no width: lines as long as this stay whole (progress lines, tables, rules).
LOG_WIDTH = 200


def off_terminal(console) -> bool:
    """Whether a transient progress bar on `console` is to be left out (rich's `disable=`): on no terminal it draws
    nothing, and leaves an empty line behind where it was (runs of them in a log)."""
    return console is not None and not console.is_terminal


class Console(rich.console.Console):
    """rich.console.Console whose width, when it writes to no terminal (and COLUMNS is unset), is LOG_WIDTH.

    rich falls back to 80 columns there, which cuts a progress line mid-number in `ganzoo run ... 2> log`.
    The check is made at each write, so a console created before its stream is redirected still behaves.
    """

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and "COLUMNS" not in self._environ and not self.is_terminal:
            return ConsoleDimensions(max(size.width, LOG_WIDTH), size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        rich.console.Console.size.fset(self, new_size)
