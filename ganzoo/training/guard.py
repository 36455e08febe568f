"""Watching a run for divergence (NaN/Inf in losses or weights) and for a discriminator that has won.

The check costs no per-step host synchronisation: each step adds its loss statistics
into a device accumulator (a sum is non-finite as soon as one term is), and every
`check_every` steps the accumulator and the norms of all weights are reduced to three
flags on the device and copied to the host without blocking. The copy is read when
it has landed (at once on the CPU, a step or two later on a GPU), so a NaN is seen
within a few steps. Before a checkpoint is written the check runs synchronously:
a checkpoint never holds a NaN.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import get_total_norm

from ..errors import Diverged
from ..recipe import probability_won

WHAT = ("the losses", "the generator's weights", "the discriminator's weights")


def discriminator_won(record: dict) -> bool:
    """A log record in which D separates real from fake almost perfectly, so G gets almost no gradient, by
    the rule of the run's loss (its `d_won`, which every window record holds)."""
    return bool(record["d_won"])


class Guard:
    def __init__(self, G: nn.Module, D: nn.Module, device: torch.device, check_every: int = 5,
                 collapse_steps: int = 1000, n_stats: int = 4, won: Callable[[dict], bool] = probability_won):
        # fixed for the run: load_state_dict and torch.compile keep these very tensors
        self.watched = [[t.detach() for t in itertools.chain(net.parameters(), net.buffers()) if t.is_floating_point()]
                        for net in (G, D)]
        self.device = device
        self.n_stats = n_stats                  # the step's statistics, losses first
        self.won = won                          # the loss's "D has won" rule, on a log record
        self.check_every = check_every          # steps between checks
        self.collapse_steps = collapse_steps    # how long D must have won before it is reported
        self.reset(0)

    def reset(self, step: int) -> None:
        """Start watching afresh from `step` (a new run, a resume or a rollback)."""
        self.acc = torch.zeros(self.n_stats, device=self.device)
        self.healthy_until = step               # every step up to here was checked finite
        self.pending: tuple[int, torch.Tensor, torch.cuda.Event | None] | None = None
        self.won_for = 0
        self.warned = False

    # -- NaN / Inf ----------------------------------------------------------------------------------

    @torch.no_grad()
    def _flags(self) -> torch.Tensor:
        """[3] bool on the device: losses, G's weights, D's weights non-finite (buffers such as BatchNorm's too)."""
        flags = [~torch.isfinite(self.acc).all()]
        for tensors in self.watched:
            flags.append(~torch.isfinite(get_total_norm(tensors)))
        self.acc.zero_()
        return torch.stack(flags)

    def after_step(self, step: int, stats: torch.Tensor) -> None:
        """Called after each step with its statistics; raises Diverged once a check has seen a problem."""
        self.acc += stats                       # [n_stats] float32, already detached (Trainer.train_step)
        if self.pending is not None and (self.pending[2] is None or self.pending[2].query()):
            self._read_pending()
        if step % self.check_every == 0:
            if self.pending is not None:
                self._read_pending()            # issued check_every steps ago: long done
            flags = self._flags()
            if self.device.type == "cuda":
                host = torch.empty(3, dtype=torch.bool, pin_memory=True)
                host.copy_(flags, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
                self.pending = (step, host, event)
            else:
                self.pending = (step, flags, None)
                self._read_pending()

    def verify(self, step: int) -> None:
        """Check now, synchronously (before a checkpoint is written)."""
        if self.pending is not None:
            self._read_pending()
        self.pending = (step, self._flags(), None)
        self._read_pending()

    def _read_pending(self) -> None:
        step, flags, event = self.pending
        self.pending = None
        if event is not None:
            event.synchronize()
        bad = flags.tolist()
        if any(bad):
            what = [w for w, b in zip(WHAT, bad) if b]
            what = ", ".join(what[:-1]) + " and " + what[-1] if len(what) > 1 else what[0]
            raise Diverged(what, self.healthy_until + 1, step)
        self.healthy_until = step

    # -- the log window -----------------------------------------------------------------------------

    def check_record(self, record: dict, window_steps: int) -> str | None:
        """Check a log record (already on the host); returns a warning to show, if any."""
        if not all(math.isfinite(record[key]) for key in ("loss_d", "loss_g")):
            raise Diverged("the losses", self.healthy_until + 1, record["step"])
        if self.won(record):
            self.won_for += window_steps
        else:
            self.won_for, self.warned = 0, False
        if self.won_for >= self.collapse_steps and not self.warned:
            self.warned = True
            shown = ", ".join(f"{k} {v:.4g}" for k, v in record.items()
                              if k not in ("step", "epoch", "d_won", "images_per_s", "train_time", "time"))
            return (f"the discriminator has won for {self.won_for} steps ({shown}): the generator gets almost no "
                    f"gradient and has probably collapsed. Look at the sample grids; a lower --lr or another "
                    f"model may help.")
        return None
