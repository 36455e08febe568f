"""The generated parts of docs/plugins.md: every RunConfig field (from its declaration) and the `ganzoo plugins`
table, so the documentation cannot drift from the code (tests/test_docs.py compares them).

Rewrite them after adding a field or a plugin:

    python -m ganzoo.reference docs/plugins.md
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from .config import FIELDS

BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)


def fields_markdown() -> str:
    """Every RunConfig field as a Markdown table: its key, flag, default, meaning, and where it may change."""
    rows = ["| field (config file key) | flag | default | what it sets | `--resume` may change it | `compare` sets it "
            "alike |", "| --- | --- | --- | --- | --- | --- |"]
    for name, info in FIELDS.items():
        cells = [f"`{name}`", f"`{info.flag}`" if info.flag else "(positional)", info.shown(), info.setting.help,
                 "yes" if info.setting.resumable else "", "yes" if info.setting.comparable else ""]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def plugins_text(infos) -> str:
    """`ganzoo plugins`'s table for these plugins, as a terminal without colour shows it."""
    from .cli import plugins_table
    from .terminal import Console

    console = Console(width=200, record=True, color_system=None, force_terminal=False, file=io.StringIO())
    console.print(plugins_table(infos))
    text = console.export_text(styles=False)
    return "```\n$ ganzoo plugins\n" + "\n".join(line.rstrip() for line in text.splitlines()) + "\n```\n"


def documented_plugins():
    """The plugins the docs show: the built-ins and the example plugin (installed, as the README sets up)."""
    from .plugins import registries

    return [p for p in registries().plugins if p.source == "built-in" or p.name == "sndcgan"]


def generated(name: str) -> str:
    if name == "run-settings":
        return fields_markdown()
    if name == "plugins-table":
        return plugins_text(documented_plugins())
    raise KeyError(name)


def blocks(text: str) -> dict[str, str]:
    """The generated blocks a document holds: name -> its text."""
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def rewrite(path: str | Path) -> None:
    path = Path(path)
    text = BLOCK.sub(lambda m: m.group(1) + generated(m.group("name")) + m.group(4), path.read_text())
    path.write_text(text)


if __name__ == "__main__":
    rewrite(sys.argv[1] if len(sys.argv) > 1 else "docs/plugins.md")
