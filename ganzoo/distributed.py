"""Data-parallel training under torchrun: `torchrun --nproc-per-node 8 -m ganzoo run dcgan ...` on one machine,
`torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint HOST:PORT ...` across machines.

One process per GPU (NCCL), or per CPU share (gloo). Every process holds the whole model and trains on its
share of each global batch; what makes N processes one run:

- data: `--batch-size` is the global batch; each epoch's order is one permutation drawn from the run's seed,
  and rank r takes its slice of every global batch (ganzoo.data's `share`);
- z: every rank draws the global batch's z from the shared (identically seeded) RNG and keeps its slice, so
  the z of N ranks together are those of one process; what else a step draws (dropout, the gradient
  penalty's mixing, augmentation) comes from a per-rank stream seeded by (seed, step, rank), so ranks differ
  there as separate GPUs' images should;
- gradients: no DistributedDataParallel wrapper. GANs meet its traps (D run twice before one backward with
  BatchNorm buffers broadcast in between, pytorch#22095; D's parameters frozen during G's step, which
  find_unused_parameters trips over; double backward for gradient penalties and R1). As NVlabs/stylegan3
  does, the weights are broadcast once from rank 0, and each phase's gradients are flattened and averaged
  across ranks just before its optimiser step (AveragingScaler). A penalty's input gradient is taken with
  autograd.grad(create_graph=True) and a normal backward follows, so nothing here sees the double backward.
  Losses are means over the batch: the average of the ranks' gradients is the global batch's gradient;
- BatchNorm: statistics per rank by default (what a DCGAN with per-GPU batches does); `--sync-bn` computes
  them over the global batch (GlobalBatchNorm, differentiable all-reduces, CPU and GPU alike);
- statistics: each step's (losses, D outputs, penalties) are averaged across ranks, so the log, the
  divergence guard and the loss's "D has won" rule read the global batch's;
- files: rank 0 alone writes checkpoints, grids, logs, evaluations and prints; a write that fails on rank 0
  stops every rank with its error;
- stopping: Ctrl-C and SIGTERM (which torchrun forwards to every worker), the time budget and divergence
  are agreed on, so every rank stops at the same step, after the same checkpoint;
- resuming: a checkpoint holds global state only (weights, optimisers, the shared RNG, counters), so a run
  resumes on any number of ranks with the same --batch-size.
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
from datetime import timedelta
from typing import Any, Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

from .config import RunConfig
from .device import select_device
from .errors import GanzooError
from .models import sample_latent
from .terminal import Console
from .train import Trainer

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# Rank 0 may evaluate (FID of thousands of samples) while the others wait in their next collective.
COLLECTIVE_TIMEOUT = timedelta(hours=1)
SIGNAL_REPEAT_GRACE = 2.0   # seconds: torchrun forwards the Ctrl-C the terminal already sent to every worker


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher setting the env:// variables)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def quiet_unless_rank0(exc: BaseException) -> BaseException:
    """Mark an error every rank raises alike: rank 0 prints it, the others exit without repeating it."""
    if int(os.environ.get("RANK", "0")) != 0:
        exc.quiet = True  # type: ignore[attr-defined]
    return exc


class Ranks:
    """This process's place in a data-parallel run, and the collectives the run needs."""

    def __init__(self, backend: str):
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.backend = backend
        # Flags, text and votes travel on the CPU: on a gloo group of their own beside NCCL, so reading them
        # never waits for the GPU.
        self.cpu_group = dist.new_group(backend="gloo") if backend == "nccl" else None
        self.pending_vote: tuple[torch.Tensor, Any] | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def console(self, console: Console) -> Console:
        """Rank 0 prints; the others are silent."""
        return console if self.is_main else Console(stderr=True, quiet=True)

    def error(self, message: str) -> GanzooError:
        return quiet_unless_rank0(GanzooError(message))  # type: ignore[return-value]

    # -- text and verdicts from rank 0 ---------------------------------------------------------------

    def broadcast_text(self, text: str) -> str:
        """Rank 0's text, on every rank."""
        data = torch.tensor(list(text.encode()) if self.is_main else [], dtype=torch.uint8)
        size = torch.tensor([len(data)], dtype=torch.int64)
        dist.broadcast(size, 0, group=self.cpu_group)
        if not self.is_main:
            data = torch.empty(int(size), dtype=torch.uint8)
        if int(size):
            dist.broadcast(data, 0, group=self.cpu_group)
        return bytes(data.tolist()).decode()

    def on_rank0(self, work: Callable[[], Any]) -> Any:
        """Run `work` on rank 0 alone (a write, a check); if it fails, every rank raises its error.

        Rank 0 raises the original exception; the others a quiet copy (an OSError keeps its number and file,
        so the loop words a failed write the same way on every rank)."""
        verdict, result, failure = "", None, None
        if self.is_main:
            try:
                result = work()
            except GanzooError as exc:
                verdict, failure = "G" + str(exc), exc
            except OSError as exc:
                verdict, failure = f"O{exc.errno or 0}\0{exc.strerror or exc}\0{exc.filename or ''}", exc
            except BaseException as exc:
                verdict, failure = f"Grank 0 stopped: {type(exc).__name__}: {exc}", exc
        verdict = self.broadcast_text(verdict)
        if failure is not None:
            raise failure
        if verdict.startswith("G"):
            raise self.error(verdict[1:])
        if verdict.startswith("O"):
            number, reason, filename = verdict[1:].split("\0")
            raise quiet_unless_rank0(OSError(int(number), reason, filename or None))
        return result

    # -- tensors ----------------------------------------------------------------------------------------

    def average(self, tensor: torch.Tensor) -> torch.Tensor:
        """In place: the mean of `tensor` over the ranks."""
        dist.all_reduce(tensor)
        return tensor.div_(self.world)

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Each parameter's gradient averaged over the ranks, in one all-reduce of the flattened gradients."""
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])      # channels-last gradients read in NCHW order
        self.average(flat)
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view(g.shape))

    def broadcast_modules(self, *modules: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (the start of a run, as stylegan3 does)."""
        with torch.no_grad():
            for module in modules:
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor.data, 0)

    def vote(self, *values: int) -> tuple[int, ...]:
        """The largest of each value (0-255) over the ranks, one step late: this call sends the values and
        returns the previous call's result, so no step waits for the slowest rank (every rank gets the
        same answer at the same step)."""
        sent = torch.tensor(values, dtype=torch.uint8)
        previous, self.pending_vote = self.pending_vote, (
            sent, dist.all_reduce(sent, op=dist.ReduceOp.MAX, group=self.cpu_group, async_op=True))
        if previous is None:
            return (0,) * len(values)
        previous[1].wait()
        return tuple(int(v) for v in previous[0])

    def close(self) -> None:
        if self.pending_vote is not None:
            self.pending_vote[1].wait()
            self.pending_vote = None
        if dist.is_initialized():
            dist.destroy_process_group()


def start(config: RunConfig) -> Ranks | None:
    """Join the run's process group when launched by torchrun (None otherwise): NCCL on GPUs, one per
    process (its local rank's), gloo on CPUs. The global batch must split evenly over the ranks."""
    if not launched():
        return None
    world, local_rank = int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(config.device)
    if device.type == "cuda":
        if device.index is not None and world > 1:
            raise quiet_unless_rank0(GanzooError(
                f"--device {config.device} picks one GPU; under torchrun each process takes the GPU of its local "
                f"rank: give --device cuda (or auto)."))
        torch.cuda.set_device(local_rank)
    if config.batch_size % world:
        raise quiet_unless_rank0(GanzooError(
            f"--batch-size {config.batch_size} is the global batch and does not split evenly over {world} "
            f"processes; give a multiple of {world}."))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT,
                                device_id=torch.device("cuda", local_rank) if backend == "nccl" else None)
    return Ranks(backend)


def rank_seed(seed: int, step: int, rank: int) -> int:
    """The seed of rank `rank`'s own random stream at a step: a hash, so no two (seed, step, rank) collide."""
    digest = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# -- the gradient average: where the loop hands gradients to an optimiser ----------------------------

class AveragingScaler:
    """The loop's GradScaler, with each optimiser step preceded by averaging its gradients across ranks.

    Every phase (D main, D's lazy regularisers, G) calls scaler.step(optimiser) once its backward is done;
    averaging there (before the scaler's inf check, so every rank skips or takes the same steps) covers each
    phase without a DDP wrapper. Everything else is the wrapped scaler's."""

    def __init__(self, scaler: torch.amp.GradScaler, ranks: Ranks):
        self.scaler, self.ranks = scaler, ranks

    def step(self, optimizer: torch.optim.Optimizer):
        self.ranks.average_gradients(p for group in optimizer.param_groups for p in group["params"])
        return self.scaler.step(optimizer)

    def __getattr__(self, name: str):
        return getattr(self.scaler, name)


# -- BatchNorm over the global batch (--sync-bn) --------------------------------------------------------

class GlobalBatchNorm:
    """Mixed into a BatchNorm class: in training, the mean and variance of the global batch, summed over
    the ranks with differentiable all-reduces (their backward all-reduces the gradients, so each rank's
    backward sees every rank's share, as torch's SyncBatchNorm does; that one runs on GPUs only).
    In eval mode (sampling), plain BatchNorm with the running statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)                                            # type: ignore[misc]
        self._check_input_dim(x)                                                 # type: ignore[attr-defined]
        dims = [0, *range(2, x.dim())]                                           # all but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        n = x.numel() // x.shape[1] * dist.get_world_size()                      # values per channel, globally
        xf = x.float()
        mean = differentiable_all_reduce(xf.sum(dims)) / n                       # [C]
        var = differentiable_all_reduce((xf - mean.view(shape)).square().sum(dims)) / n   # [C], biased
        if self.track_running_stats:                                             # type: ignore[attr-defined]
            with torch.no_grad():
                self.num_batches_tracked += 1                                    # type: ignore[attr-defined]
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_((var * n / max(n - 1, 1)).to(self.running_var.dtype), momentum)
        y = (xf - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)   # type: ignore[attr-defined]
        if self.affine:                                                           # type: ignore[attr-defined]
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


@functools.cache
def _global_class(batchnorm: type) -> type:
    """GlobalBatchNorm2d for BatchNorm2d, and so on (one class per BatchNorm class)."""
    return type(f"Global{batchnorm.__name__}", (GlobalBatchNorm, batchnorm), {})


def sync_batchnorm(module: nn.Module) -> int:
    """Make every BatchNorm in `module` a GlobalBatchNorm, in place; returns how many.

    Each keeps its very parameters and buffers (the optimisers, the guard and the averaged G hold
    them) and its state-dict names, so checkpoints and generator files are those of plain BatchNorm."""
    count = 0
    for bn in module.modules():
        if isinstance(bn, nn.modules.batchnorm._BatchNorm) and not isinstance(bn, GlobalBatchNorm):
            bn.__class__ = _global_class(type(bn))
            count += 1
    return count


# -- the trainer --------------------------------------------------------------------------------------

class DistributedTrainer(Trainer):
    """The Trainer as one of N data-parallel ranks (see the module's docstring)."""

    def __init__(self, config: RunConfig, data, console: Console, ranks: Ranks):
        self.ranks = ranks
        self.rank, self.world = ranks.rank, ranks.world            # the data's and z's share (Trainer)
        self.stop_wanted = False                                   # this rank's signal; stop_requested: agreed
        self.signal_repeat_grace = SIGNAL_REPEAT_GRACE
        super().__init__(config, data, ranks.console(console))
        self.scaler = AveragingScaler(self.scaler, ranks)
        if config.sync_bn and self.world > 1:
            sync_batchnorm(self.G)
            sync_batchnorm(self.D)
        self.shared_rng: tuple[torch.Tensor, torch.Tensor | None] | None = None

    def describe(self) -> str:
        return (f"{super().describe()}, {self.world} processes x {self.config.batch_size // self.world} images "
                f"({self.ranks.backend}{', BatchNorm over the global batch' if self.config.sync_bn and self.world > 1 else ''})")

    # -- a step ---------------------------------------------------------------------------------------

    def _rng_states(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return (torch.get_rng_state(),
                torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)

    def _set_rng_states(self, states: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        torch.set_rng_state(states[0])
        if states[1] is not None:
            torch.cuda.set_rng_state(states[1], self.device)

    def draw_latent(self, n: int) -> torch.Tensor:
        """This rank's slice of the global batch's z, drawn from the shared RNG; the rest of the step then
        draws from this rank's own stream (train_step puts the shared one back)."""
        z = sample_latent(n * self.world, self.config, self.device)[self.rank * n:(self.rank + 1) * n]
        if self.world > 1:
            self.shared_rng = self._rng_states()
            torch.manual_seed(rank_seed(self.config.seed, self.d_steps, self.rank))
        return z

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.compile_pending:                 # compiles, then comes back here for the step itself
            return super().train_step(real, labels)
        try:
            stats = super().train_step(real, labels)
        finally:
            if self.shared_rng is not None:      # the shared stream, as the z draw left it
                self._set_rng_states(self.shared_rng)
                self.shared_rng = None
        self.last_stats = self.ranks.average(stats)  # the global batch's statistics, on every rank
        return self.last_stats

    # -- stopping together ------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """This rank's wish to stop (its signal); the loop stops once the ranks have agreed (_agree_on_stopping)."""
        self.stop_wanted = True

    def _agree_on_stopping(self) -> None:
        """Stop when any rank was asked to (by the signal it got: SIGTERM outranks SIGINT); the time budget is
        rank 0's clock."""
        signum, out_of_time = self.ranks.vote(int(self.stop_signal) if self.stop_wanted else 0,
                                              int(self.out_of_time and self.ranks.is_main))
        if signum:
            self.stop_requested, self.stop_signal = True, signal.Signals(signum)
        self.out_of_time = bool(out_of_time)

    # -- rank 0 writes --------------------------------------------------------------------------------

    def fit(self):
        self.ranks.broadcast_modules(self.G, self.D, *([self.ema.G] if self.ema else []))
        try:
            return super().fit()
        except GanzooError as exc:              # agreed on: the same step, the same error on every rank
            raise quiet_unless_rank0(exc)

    def save_checkpoint(self):
        self.guard.verify(self.step)            # the same weights everywhere: the same verdict everywhere
        self.ranks.on_rank0(super().save_checkpoint)
        self.last_checkpoint_step = self.step
        return self.files.checkpoint

    def save_epoch_grid(self, path=None):
        return self.ranks.on_rank0(lambda: super(DistributedTrainer, self).save_epoch_grid(path)) \
            or path or self.files.epoch_grid(self.epoch)

    def log(self, record: dict) -> None:
        self.ranks.on_rank0(lambda: super(DistributedTrainer, self).log(record))

    def evaluate(self, console):
        return self.ranks.on_rank0(lambda: super(DistributedTrainer, self).evaluate(console)) or {}

    def _trim_log(self) -> None:
        self.ranks.on_rank0(super()._trim_log)

    def _open_board(self) -> None:
        if self.ranks.is_main:
            super()._open_board()
