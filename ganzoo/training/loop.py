"""The training loop: epochs of steps, the named conditions it stops on, and the training clock.

    while the epochs are not done:
        a step on the next batch; the divergence guard's look at it
        agree on stopping (a signal, the budget: every process at the same step)
        a log window full: a WindowRecord to the observers
        the epoch's end: its grid, a checkpoint, a Milestone (the progress line, --eval-every)
        else a stop asked for: a checkpoint, then Interrupted
        else the budget spent: a checkpoint, a grid, a Milestone, the end
        else every --checkpoint-every steps: a checkpoint

It stops on four conditions, each by name: `epochs` (done), `budget` (config.budget of training time
spent: the run ends as a finished one does), `signal` (Ctrl-C or SIGTERM: a checkpoint, then
Interrupted; a second one aborts at once) and `divergence` (NaN/Inf: stop, or with --on-divergence
rollback reload the last checkpoint with half the learning rate, at most MAX_ROLLBACKS times).
The step (ganzoo.training.step) does the arithmetic; the observers (ganzoo.training.observers) write
and show what the loop publishes; the distribution strategy makes N processes stop and write as one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from pathlib import Path

import torch

from ..checkpoint import TrainState, load_checkpoint, save_checkpoint, save_generator
from ..config import RunConfig
from ..errors import Diverged, GanzooError, Interrupted
from ..runfiles import RunFiles
from ..sampling import generate, grid_columns
from ..terminal import Console
from .distribution import SingleProcess
from .guard import Guard
from .observers import GridRecord, Milestone, Observers, ProgressBar, RunInfo, WindowRecord
from .step import Step

MAX_ROLLBACKS = 3  # with --on-divergence rollback: halvings of the learning rate before giving up


def resume_hint(files: RunFiles, extra: str = "") -> str:
    """The one way ganzoo says how to continue a run."""
    return f"ganzoo run --resume {files.root}{extra}"


class Loop:
    """Epochs of steps until a stop condition (see the module's docstring)."""

    def __init__(self, config: RunConfig, state: TrainState, step: Step, batches, data_rng: torch.Generator,
                 observers: Observers, files: RunFiles, *, fixed_noise: torch.Tensor,
                 fixed_labels: torch.Tensor | None, strategy: SingleProcess | None = None,
                 console: Console | None = None, progress: ProgressBar | None = None):
        self.config, self.state, self.step, self.batches, self.data_rng = config, state, step, batches, data_rng
        self.observers, self.files, self.progress = observers, files, progress
        self.fixed_noise, self.fixed_labels = fixed_noise, fixed_labels
        self.strategy = strategy or SingleProcess()
        self.console = console or Console(stderr=True)
        self.steps_per_epoch = batches.steps_per_epoch
        self.guard = Guard(step.G, step.D, step.device, n_stats=len(step.stat_names),
                           won=step.loss.won)                 # NaN/Inf watch, no per-step host sync
        self.last_checkpoint_step: int | None = None        # where the last good weights on disk are from
        self.rollbacks = 0
        # the stop conditions besides the epochs
        self.signal_wanted = 0          # the signal this process got (0: none)
        self.stop_signal = 0            # the signal every process agreed to stop on (0: none)
        self.out_of_time = False        # config.budget spent: the run ends cleanly, as if its epochs were done
        self.finished = True            # the observers' finish() has run for the last start()
        step.signalled = lambda: bool(self.signal_wanted)   # a compile that fails after a signal was interrupted

    # -- stop conditions, by name ---------------------------------------------------------------------

    @property
    def epochs_done(self) -> bool:
        return self.state.epoch >= self.config.epochs

    @property
    def epoch_ended(self) -> bool:
        return self.state.step_in_epoch == self.steps_per_epoch

    @property
    def stop_requested(self) -> bool:
        return bool(self.stop_signal)

    def budget_spent(self) -> bool:
        return bool(self.config.budget) and self.state.clock.seconds() >= self.config.budget

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Finish the step in flight, save a checkpoint and stop (what the first Ctrl-C does); with several
        processes, once they have agreed to (`strategy.vote`)."""
        self.signal_wanted = int(signum)
        if self.strategy.stops_at_once:
            self.stop_signal = int(signum)

    def _agree_on_stopping(self) -> None:
        signum, self.out_of_time = self.strategy.vote(self.signal_wanted, self.budget_spent())
        if signum:
            self.stop_signal = signum

    def position(self) -> str:
        return self.state.position(self.steps_per_epoch)

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> Path:
        """Train until config.epochs are done (or a stop condition holds); returns the generator file's path.

        A divergence stops the run (or, with on_divergence="rollback", reloads the last checkpoint with half
        the learning rate and goes on); a failed write stops it keeping the last good checkpoint.
        """
        state, config = self.state, self.config
        self.strategy.broadcast_modules(*self.step.networks())     # every process starts from rank 0's weights
        while True:
            self._publish("start", RunInfo(config, self.files, state.step, state.epoch, self.steps_per_epoch,
                                           self.step.total_steps, self.step.stat_names, self.step.loss.labels,
                                           self.console, self.position))
            state.clock.start()
            try:
                with self._signals_stop_cleanly():
                    window = LogWindow(len(self.step.stat_names), self.step.device)
                    batches = None
                    while not self.epochs_done:
                        if batches is None:                           # an epoch starts (or resumes mid-way)
                            self.data_rng.set_state(state.data_epoch_rng)
                            batches = self.batches.labelled(self.data_rng, start=state.step_in_epoch)
                        real, labels = next(batches)                  # labels: None unless conditional
                        if self.step.compile_pending:             # compiling is not training time (--budget)
                            with state.clock.paused():
                                stats = self.step(real, labels)
                        else:
                            stats = self.step(real, labels)
                        state.step += 1
                        state.step_in_epoch += 1
                        window.add(stats)
                        self.guard.after_step(state.step, stats)
                        self._agree_on_stopping()
                        if state.step % config.log_every == 0 or self.epoch_ended or self.out_of_time:
                            self._log_window(window)                  # the log reaches the last step
                        if self.progress and self.strategy.is_writer:
                            self.progress.advance(state.step)
                        if self.epoch_ended:
                            batches = None
                            self._end_epoch()
                            if self.stop_requested and not self.epochs_done:
                                raise self._interrupted()
                            if self.out_of_time:
                                self.console.print(f"time budget of {config.budget:g}s reached at {self.position()}")
                                break
                        elif self.stop_requested:
                            self.save_checkpoint()
                            raise self._interrupted()
                        elif self.out_of_time:
                            self._end_mid_epoch()
                            break
                        elif state.step % config.checkpoint_every == 0:
                            self.save_checkpoint()
                return self.files.generator
            except KeyboardInterrupt:
                raise self.strategy.quiet(Interrupted(
                    f"Interrupted at step {state.step} (second Ctrl-C); the last checkpoint in {self.files.root} is "
                    f"intact. Continue with: {resume_hint(self.files)}")) from None
            except Diverged as exc:
                spent = state.clock.seconds()
                state.clock.stop()
                self._finish_observers()
                self._after_divergence(exc)                 # rolls back, or raises the whole story
                state.clock.set(spent)                      # one budget for the whole run, rollbacks included
                continue
            except OSError as exc:
                raise self.strategy.quiet(GanzooError(
                    f"Could not write {exc.filename or self.files.root} ({exc.strerror or exc}); training stopped at "
                    f"step {state.step}. {self._last_good()} Free some space (or fix the folder) and continue "
                    f"with: {resume_hint(self.files)}")) from None
            except GanzooError as exc:              # agreed on: the same step, the same error on every process
                raise self.strategy.quiet(exc)
            finally:
                state.clock.stop()
                self._finish_observers()

    def _publish(self, event: str, record=None) -> None:
        """A record to the observers, on the writing process; a failure there stops every process."""
        if event == "start":
            self.finished = False
        self.strategy.on_writer(lambda: self.observers.publish(event, record))

    def _finish_observers(self) -> None:
        if self.strategy.is_writer and not self.finished:
            self.finished = True
            self.observers.finish()

    def _log_window(self, window: "LogWindow") -> None:
        """The window's means to the observers (the one host sync per window); then the guard's verdict on them."""
        means, images_per_s = window.read(self.config.batch_size)
        stats = dict(zip(self.step.stat_names, means))
        epoch = self.state.epochs_float(self.steps_per_epoch)
        d_won = bool(self.step.loss.won({"step": self.state.step, "epoch": epoch, **stats}))
        record = WindowRecord(self.state.step, epoch, stats, d_won, images_per_s, self.state.clock.seconds(),
                              time.time(), window.steps)
        self._publish("window", record)
        warning = self.guard.check_record(record.to_dict(), window.steps)  # Diverged on NaN/Inf; D won for long
        if warning:
            self.console.print(f"[yellow]warning[/yellow]: {warning}", soft_wrap=True)
        window.reset()

    def _grid(self, path: Path) -> Path:
        """The fixed noise's samples to the observers (the epoch grids write `path`)."""
        def publish():
            images = generate(self.step.sampler, self.fixed_noise, self.fixed_labels,
                              autocast=self.step.precision.autocast_dtype)
            nrow = grid_columns(len(images), self.config.num_classes)
            self.observers.publish("grid", GridRecord(self.state.step, self.state.epoch, images, nrow, path))
        self.strategy.on_writer(publish)
        return path

    def _end_epoch(self) -> None:
        """An epoch done: the next one's order, its grid, a checkpoint, then the milestone (--eval-every)."""
        state = self.state
        state.epoch += 1
        state.step_in_epoch = 0
        state.data_epoch_rng = self.data_rng.get_state()
        grid = self._grid(self.files.epoch_grid(state.epoch))
        self.save_checkpoint()
        self._publish("milestone", Milestone("epoch", state.step, state.epoch, self.position(), grid,
                                             final=self.epochs_done or self.out_of_time,
                                             stopping=self.stop_requested))

    def _end_mid_epoch(self) -> None:
        """The time budget spent mid-epoch: the run ends as a finished one does (checkpoint, grid, evaluation)."""
        self.save_checkpoint()
        grid = self._grid(self.files.step_grid(self.state.step))
        self._publish("milestone", Milestone("budget", self.state.step, self.state.epoch, self.position(), grid,
                                             final=True, stopping=False))

    # -- checkpoints -----------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """The checkpoint and the generator file, by the writing process, once the weights are checked finite."""
        self.guard.verify(self.state.step)   # raises Diverged rather than write a NaN over the last good weights

        def write():
            save_checkpoint(self.files.checkpoint, self.config, self.state, self.step)
            self.last_checkpoint_step = self.state.step
            save_generator(self.files.generator, self.step.sampler, self.config)
        self.strategy.on_writer(write)
        self.last_checkpoint_step = self.state.step
        return self.files.checkpoint

    def load_checkpoint(self, path: Path) -> None:
        load_checkpoint(path, self.state, self.step, self.steps_per_epoch)
        self.last_checkpoint_step = self.state.step
        self.guard.reset(self.state.step)

    # -- stopping ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals_stop_cleanly(self):
        """First Ctrl-C (or SIGTERM, what job schedulers send): stop at the next step boundary with a
        checkpoint. Second: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        first_at: list[float] = []   # when the first signal came

        def on_signal(signum, frame):
            repeated = bool(first_at) and time.monotonic() - first_at[0] <= self.strategy.signal_repeat_grace
            if self.stop_requested and not repeated:
                raise KeyboardInterrupt
            if first_at:             # this process's stop is asked for already, not yet agreed on
                return
            first_at.append(time.monotonic())
            self.request_stop(signum)
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.console.print(f"[yellow]{name}: saving a checkpoint after this step (again to abort)[/yellow]")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _interrupted(self) -> Interrupted:
        by = "" if self.stop_signal == signal.SIGINT else f" by {signal.Signals(self.stop_signal).name}"
        exc = Interrupted(f"Interrupted{by} at step {self.state.step}; checkpoint saved in {self.files.root}. "
                          f"Continue with: {resume_hint(self.files)}")
        exc.exit_code = 128 + self.stop_signal
        return exc

    def _last_good(self) -> str:
        if self.last_checkpoint_step is None:
            return "No checkpoint had been written yet."
        return (f"The last good weights are in {self.files.checkpoint} (step {self.last_checkpoint_step}; "
                f"the generator alone in {self.files.generator}).")

    def _after_divergence(self, exc: Diverged) -> None:
        """Roll back to the last checkpoint with half the learning rate, or raise Diverged with the whole story."""
        rollback = self.config.on_divergence == "rollback" and self.last_checkpoint_step is not None
        if rollback and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            scale = self.state.lr_scale
            self.load_checkpoint(self.files.checkpoint)
            self.state.lr_scale = scale / 2
            self.step.set_learning_rates()
            self.console.print(f"[yellow]warning[/yellow]: training diverged ({exc}); rolled back to the checkpoint "
                               f"of step {self.state.step} with the learning rate halved to "
                               f"{self.step.opt_g.param_groups[0]['lr']:.3g} "
                               f"(rollback {self.rollbacks} of {MAX_ROLLBACKS}).", soft_wrap=True)
            return
        if rollback:
            advice = f"It still diverged after {MAX_ROLLBACKS} rollbacks; start again with a lower --lr."
        elif self.config.on_divergence == "rollback":      # given, with nothing yet to roll back to
            advice = ("--on-divergence rollback had no checkpoint to roll back to; start again with a lower --lr "
                      "or a smaller --checkpoint-every.")
        elif self.last_checkpoint_step is not None:
            advice = (f"Continue from there with the learning rate halved at each divergence: "
                      f"{resume_hint(self.files, ' --on-divergence rollback')}")
        else:
            advice = "Start again with a lower --lr (or --on-divergence rollback and more frequent checkpoints)."
        raise self.strategy.quiet(Diverged(exc.what, exc.first, exc.last,
                                           f"Training diverged: {exc}; stopped. {self._last_good()} {advice}"))


class LogWindow:
    """The statistics of the steps since the last log, summed on the device (read back once per window)."""

    def __init__(self, n_stats: int, device: torch.device):
        self.sum = torch.zeros(n_stats, device=device)
        self.reset()

    def reset(self) -> None:
        self.sum.zero_()
        self.steps, self.start = 0, time.perf_counter()

    def add(self, stats: torch.Tensor) -> None:
        self.sum += stats
        self.steps += 1

    def read(self, batch_size: int) -> tuple[list[float], float]:
        """(mean of each statistic, images per second) over the window."""
        return (self.sum / self.steps).tolist(), self.steps * batch_size / (time.perf_counter() - self.start)
