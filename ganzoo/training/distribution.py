"""Distribution as a strategy the training step and loop call: `SingleProcess`, or `Ranks`, one of N
data-parallel processes under torchrun: `torchrun --nproc-per-node 8 -m ganzoo run dcgan ...` on one machine,
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
  across ranks just before its optimiser step (the step calls `average_gradients(optimizer)` before each
  `step()`). A penalty's input gradient is taken with
  autograd.grad(create_graph=True) and a normal backward follows, so nothing here sees the double backward.
  Losses are means over the batch: the average of the ranks' gradients is the global batch's gradient;
- BatchNorm: statistics per rank by default (what a DCGAN with per-GPU batches does); `--sync-bn` computes
  them over the global batch (GlobalBatchNorm, differentiable all-reduces, CPU and GPU alike);
- statistics: each step's (losses, D outputs, penalties) are averaged across ranks, so the log, the
  divergence guard and the loss's "D has won" rule read the global batch's;
- files: rank 0 alone writes checkpoints, grids, logs, evaluations and prints (`is_writer`, `on_writer`); a
  write that fails on rank 0 stops every rank with its error;
- stopping: Ctrl-C and SIGTERM (which torchrun forwards to every worker), the time budget and divergence
  are agreed on (`vote`), so every rank stops at the same step, after the same checkpoint;
- faults: a `Watchdog` thread beside each rank's training beats a counter in torchrun's store and watches
  the others'. A peer silent for --collective-timeout (frozen, killed, its machine gone) stops the run with
  an error naming it, even while this rank is blocked in a collective; a collective that fails because a
  peer ended becomes a sentence naming the peer (`lost_peer`); and a second Ctrl-C/SIGTERM ends the process
  at once, blocked or not (the signal reaches the thread through `signal.set_wakeup_fd`);
- resuming: a checkpoint holds global state only (weights, optimisers, the shared RNG, counters), so a run
  resumes on any number of ranks with the same --batch-size.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import signal
import socket
import sys
import threading
import time
from datetime import timedelta
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

from ..config import RunConfig
from ..errors import GanzooError
from ..terminal import Console

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


class SingleProcess:
    """One process trains alone: nothing to share, average or agree on."""

    rank, world = 0, 1
    is_writer = True
    stops_at_once = True           # a signal stops the run at the next step, with nobody to agree with
    signal_repeat_grace = 0.0      # seconds in which a repeated Ctrl-C counts as the same one

    def share(self, rows: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch's tensor: all of them."""
        return rows

    def own_random_stream(self, seed: int, step: int):
        """What the rest of a step draws comes from torch's RNG as it is."""
        return contextlib.nullcontext()

    def average(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Nothing to average."""

    def vote(self, signal: int, out_of_time: bool) -> tuple[int, bool]:
        """(the signal that stops the run, 0 for none; whether the budget is spent): this process's own."""
        return signal, out_of_time

    def on_writer(self, work: Callable[[], Any]) -> Any:
        return work()

    def quiet(self, exc: BaseException) -> BaseException:
        return exc

    def console(self, console: Console) -> Console:
        return console

    def prepare(self, G: nn.Module, D: nn.Module) -> None:
        """Nothing to change in the networks."""

    def broadcast_modules(self, *modules: nn.Module) -> None:
        """Nothing to broadcast."""

    def describe(self, batch_size: int) -> str:
        """What the run's description adds about the processes (nothing for one)."""
        return ""

    def stepped(self, step: int) -> None:
        """A step is done (the watchdog sizes its patience to the steps)."""

    def watch(self, where: Callable[[], str]) -> contextlib.AbstractContextManager:
        """While inside: peers watched, a second signal ends the process at once. `where()` says where the
        last checkpoint is and how to resume, for the message a stop prints."""
        return contextlib.nullcontext()

    def lost_peer(self, exc: BaseException) -> str | None:
        """If `exc` is a collective that failed because another process ended: a sentence saying which."""
        return None

    def agreed_config(self, config: RunConfig) -> RunConfig:
        """The config every process trains with: the writing process's (its --out, say)."""
        return config

    def close(self) -> None:
        pass

    def __enter__(self) -> "SingleProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Strategy = SingleProcess    # the interface; Ranks implements it for N processes


class Ranks(SingleProcess):
    """This process's place in a data-parallel run, and the collectives the run needs."""

    stops_at_once = False          # a signal is this rank's wish; the ranks agree on it (vote)
    signal_repeat_grace = SIGNAL_REPEAT_GRACE

    def __init__(self, backend: str, sync_bn: bool = False, collective_timeout: float = 0.0):
        self.rank = dist.get_rank()
        self.world = dist.get_world_size()
        self.backend = backend
        self.sync_bn = sync_bn and self.world > 1
        # Flags, text and votes travel on the CPU: on a gloo group of their own beside NCCL, so reading them
        # never waits for the GPU.
        self.cpu_group = dist.new_group(backend="gloo") if backend == "nccl" else None
        self.pending_vote: tuple[torch.Tensor, Any] | None = None
        self.watchdog = Watchdog(self.rank, self.world, collective_timeout) if self.world > 1 else None

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    def console(self, console: Console) -> Console:
        """Rank 0 prints; the others are silent."""
        return console if self.is_writer else Console(stderr=True, quiet=True)

    def error(self, message: str) -> GanzooError:
        return quiet_unless_rank0(GanzooError(message))  # type: ignore[return-value]

    # -- text and verdicts from rank 0 ---------------------------------------------------------------

    def broadcast_text(self, text: str) -> str:
        """Rank 0's text, on every rank."""
        data = torch.tensor(list(text.encode()) if self.is_writer else [], dtype=torch.uint8)
        size = torch.tensor([len(data)], dtype=torch.int64)
        dist.broadcast(size, 0, group=self.cpu_group)
        if not self.is_writer:
            data = torch.empty(int(size), dtype=torch.uint8)
        if int(size):
            dist.broadcast(data, 0, group=self.cpu_group)
        return bytes(data.tolist()).decode()

    def quiet(self, exc: BaseException) -> BaseException:
        """An error every rank stopped on alike: rank 0 prints it, the others exit without repeating it."""
        return quiet_unless_rank0(exc)

    def on_writer(self, work: Callable[[], Any]) -> Any:
        """Run `work` on rank 0 alone (a write, a check); if it fails, every rank raises its error.

        Rank 0 raises the original exception; the others a quiet copy (an OSError keeps its number and file,
        so the loop words a failed write the same way on every rank)."""
        verdict, result, failure = "", None, None
        if self.is_writer:
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

    def share(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch's tensor (its z: drawn whole from the shared RNG, then sliced)."""
        n = len(rows) // self.world
        return rows[self.rank * n:(self.rank + 1) * n]

    @contextlib.contextmanager
    def own_random_stream(self, seed: int, step: int) -> Iterator[None]:
        """Inside: this rank's own random stream, seeded by (seed, step, rank), for what a step draws besides
        z (dropout, a penalty's mixing, augmentation); after: the shared stream, as the block found it."""
        if self.world == 1:
            yield
            return
        device = torch.cuda.current_device() if self.backend == "nccl" else None
        shared = (torch.get_rng_state(), torch.cuda.get_rng_state(device) if device is not None else None)
        torch.manual_seed(rank_seed(seed, step, self.rank))
        try:
            yield
        finally:
            torch.set_rng_state(shared[0])
            if shared[1] is not None:
                torch.cuda.set_rng_state(shared[1], device)

    def average_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """The gradients of the optimiser's parameters averaged over the ranks, in one all-reduce of the
        flattened gradients (called just before each optimiser step)."""
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
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

    def vote(self, signal: int, out_of_time: bool) -> tuple[int, bool]:
        """Whether to stop, agreed, one step late: the largest signal any rank got (SIGTERM outranks SIGINT),
        and rank 0's clock for the budget. This call sends this rank's values and returns the previous call's
        result, so no step waits for the slowest rank (every rank gets the same answer at the same step)."""
        signal, out_of_time = self._vote(signal, int(out_of_time and self.is_writer))
        return signal, bool(out_of_time)

    def _vote(self, *values: int) -> tuple[int, ...]:
        """The largest of each value (0-255) over the ranks, as of the previous call."""
        sent = torch.tensor(values, dtype=torch.uint8)
        previous, self.pending_vote = self.pending_vote, (
            sent, dist.all_reduce(sent, op=dist.ReduceOp.MAX, group=self.cpu_group, async_op=True))
        if previous is None:
            return (0,) * len(values)
        previous[1].wait()
        return tuple(int(v) for v in previous[0])

    def prepare(self, G: nn.Module, D: nn.Module) -> None:
        """--sync-bn: every BatchNorm of G and D normalises over the global batch."""
        if self.sync_bn:
            sync_batchnorm(G)
            sync_batchnorm(D)

    def agreed_config(self, config: RunConfig) -> RunConfig:
        return RunConfig.from_json(self.broadcast_text(config.to_json()))

    def describe(self, batch_size: int) -> str:
        return (f", {self.world} processes x {batch_size // self.world} images ({self.backend}"
                f"{', BatchNorm over the global batch' if self.sync_bn else ''})")

    def stepped(self, step: int) -> None:
        if self.watchdog:
            self.watchdog.stepped(step)

    def watch(self, where: Callable[[], str]) -> contextlib.AbstractContextManager:
        return self.watchdog.watching(where) if self.watchdog else contextlib.nullcontext()

    def lost_peer(self, exc: BaseException) -> str | None:
        if not isinstance(exc, RuntimeError) or not self.watchdog:
            return None
        text = str(exc)
        if not (isinstance(exc, getattr(dist, "DistError", ())) or any(
                word in text for word in ("gloo", "Connection", "NCCL", "connection", "peer", "Timed out"))):
            return None
        return self.watchdog.who_ended()

    def close(self) -> None:
        if self.watchdog:
            self.watchdog.stop()
        if self.pending_vote is not None:
            self.pending_vote[1].wait()
            self.pending_vote = None
        if dist.is_initialized():
            dist.destroy_process_group()


def start(config: RunConfig) -> SingleProcess:
    """The run's strategy: Ranks, having joined the run's process group, when launched by torchrun (NCCL on
    GPUs, one per process, its local rank's; gloo on CPUs); else SingleProcess. The global batch must split
    evenly over the ranks."""
    if not launched():
        return SingleProcess()
    world, local_rank = int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(config.device)
    if device.type == "cuda":
        if device.index is not None and world > 1:
            raise quiet_unless_rank0(GanzooError(
                f"--device {config.device} picks one GPU; under torchrun each process takes the GPU of its local "
                f"rank: give --device cuda (or auto)."))
        torch.cuda.set_device(local_rank)
    try:
        config.check_batch(world)          # every batch-shape rule, on each process's share, before any file
    except GanzooError as exc:
        raise quiet_unless_rank0(exc) from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT,
                                device_id=torch.device("cuda", local_rank) if backend == "nccl" else None)
    return Ranks(backend, sync_bn=config.sync_bn, collective_timeout=config.collective_timeout)


# -- a watchdog beside each rank --------------------------------------------------------------------------

class Watchdog:
    """A daemon thread beside one rank's training.

    - Every BEAT seconds it adds 1 to this rank's counter in torchrun's store (held by torchrun itself, so
      it outlives any worker) and reads the others'. A peer whose counter has not moved for `limit()`
      seconds is frozen (SIGSTOP, a hung machine) or gone: the thread prints an error naming it, where the
      last checkpoint is and how to resume, and ends the process (exit 1) -- the main thread may be blocked
      in a collective that would otherwise wait for an hour. The thread's beats do not depend on the main
      thread, so a long step or rank 0's evaluation never reads as silence.
    - When a collective fails (a peer ended), `who_ended()` names the peers whose counters stopped.
    - Inside `watching()`, Ctrl-C and SIGTERM also reach the thread (signal.set_wakeup_fd), which the
      main thread's handler cannot while blocked in C++: a second signal (after SIGNAL_REPEAT_GRACE) ends
      the process at once with exit 128+signal if the main thread has not ended it within ABORT_GRACE.
    """

    BEAT = 0.5              # seconds between beats
    FLOOR = 60.0            # seconds: the least patience with a silent peer unless --collective-timeout says
    STEPS = 20              # auto patience: this many of the slowest step so far
    ABORT_GRACE = 0.5       # seconds the main thread has to end the process itself on a second signal

    def __init__(self, rank: int, world: int, timeout: float = 0.0):
        self.rank, self.world, self.timeout = rank, world, float(timeout or 0.0)
        self.peers = [r for r in range(world) if r != rank]
        self.store = dist.PrefixStore("ganzoo/beat/", dist.TCPStore(
            os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
            timeout=timedelta(seconds=30)))
        now = time.monotonic()
        self.counts = {r: -1 for r in self.peers}
        self.heard = {r: now for r in self.peers}       # when each peer's counter last moved
        self.slowest_step, self.last_step_at, self.step = 0.0, now, 0
        self.where: Callable[[], str] = lambda: ""
        self.signals: list[tuple[float, int]] = []
        self.reader: socket.socket | None = None
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ganzoo-watchdog", daemon=True)
        self.thread.start()

    def limit(self) -> float:
        """Seconds a peer may stay silent: --collective-timeout, or 20 of the slowest steps, at least 60 s."""
        return self.timeout or max(self.FLOOR, self.STEPS * self.slowest_step)

    def stepped(self, step: int) -> None:
        now = time.monotonic()
        if self.step:
            self.slowest_step = max(self.slowest_step, now - self.last_step_at)
        self.step, self.last_step_at = step, now

    def stop(self) -> None:
        self.done.set()

    # -- the thread ---------------------------------------------------------------------------------------

    def _beat(self) -> None:
        with self.lock:
            self.store.add(str(self.rank), 1)
            now = time.monotonic()
            for r in self.peers:
                count = self.store.add(str(r), 0)
                if count != self.counts[r]:
                    self.counts[r], self.heard[r] = count, now

    def _run(self) -> None:
        while not self.done.wait(self.BEAT):
            try:
                self._beat()
            except Exception:                    # the store is gone: torchrun (the run's coordinator) ended
                if not self.done.wait(5 * self.BEAT):
                    self._end(1, "torchrun, which coordinates the processes, stopped answering")
                return
            silent = [r for r in self.peers if time.monotonic() - self.heard[r] > self.limit()]
            if silent and not self.done.is_set():
                self._end(1, f"{self._ranks(silent)} stopped responding {self.limit():.0f}s ago (frozen, "
                             f"or gone with its machine; --collective-timeout sets how long to wait)")
            self._read_signals()

    @staticmethod
    def _ranks(ranks: list[int]) -> str:
        return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(map(str, ranks))

    def _end(self, code: int, what: str) -> None:
        """Print what happened and end the process now (the main thread may be blocked in a collective)."""
        from ..cli import _error
        try:
            where = self.where()
        except Exception:
            where = ""
        _error(f"The run stopped: {what}, at step {self.step}. {where}".strip())
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    def who_ended(self) -> str:
        """After a failed collective: the peers whose counters stopped, watched until one has been silent for
        3 beats (a live peer beats every one), for at most 8 beats."""
        deadline = time.monotonic() + 8 * self.BEAT
        ended: list[int] = []
        while not ended and time.monotonic() < deadline:
            time.sleep(self.BEAT / 5)
            try:
                self._beat()
            except Exception:
                return "a peer process ended or became unreachable (torchrun's store too)"
            with self.lock:
                ended = [r for r in self.peers if time.monotonic() - self.heard[r] > 3 * self.BEAT]
        if not ended:
            return "a peer process ended or became unreachable (which one could not be told)"
        return f"the process of {self._ranks(ended)} ended or became unreachable"

    # -- signals ------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def watching(self, where: Callable[[], str]) -> Iterator[None]:
        self.where = where
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self.reader = reader
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous)
            self.reader = None
            reader.close()
            writer.close()

    def _read_signals(self) -> None:
        reader = self.reader
        if reader is None:
            return
        try:
            data = reader.recv(64)
        except (BlockingIOError, OSError):
            return
        now = time.monotonic()
        for signum in data:
            if signum not in (signal.SIGINT, signal.SIGTERM):
                continue
            if self.signals and now - self.signals[0][0] > SIGNAL_REPEAT_GRACE:
                self.signals.append((now, signum))
                if not self.done.wait(self.ABORT_GRACE):     # the main thread did not end it: we do
                    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
                    self._end(128 + signum, f"a second {name} ended it at once")
                return
            if not self.signals:
                self.signals.append((now, signum))


def rank_seed(seed: int, step: int, rank: int) -> int:
    """The seed of rank `rank`'s own random stream at a step: a hash, so no two (seed, step, rank) collide."""
    digest = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


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
