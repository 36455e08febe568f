"""The training loop: D update, then G update, with fixed-noise grids, logs and checkpoints."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import threading
import time
from pathlib import Path

import torch
from .terminal import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torchvision.utils import make_grid

from .checkpoint import (atomic_write, config_of, flatten_optimizer, load_state, read_tensors, save_generator,
                         save_tensors, unflatten_optimizer)
from .config import UNLIMITED_EPOCHS, RunConfig
from .data import ImageData, make_batches, memory_budget
from .device import select_device, select_precision
from .errors import GanzooError, Interrupted
from .guard import Diverged, Guard
from .models import build_discriminator, build_generator, build_loss, count_parameters, sample_latent
from .evaluate import evaluate, format_scores
from .runfiles import RunFiles, read_metrics
from .sampling import generate, save_grid

__all__ = ["MAX_ROLLBACKS", "RunFiles", "Trainer", "read_metrics", "resume_config", "save_grid", "summary_writer_class"]


MAX_ROLLBACKS = 3  # with --on-divergence rollback: halvings of the learning rate before giving up
TENSORBOARD_MISSING = "--tensorboard needs TensorBoard, which is not installed: pip install 'pyganzoo[tensorboard]'."


def summary_writer_class():
    """torch's TensorBoard SummaryWriter: TensorBoard is an optional extra, named in one sentence when missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GanzooError(TENSORBOARD_MISSING) from None
    return SummaryWriter


class Trainer:
    def __init__(self, config: RunConfig, data: ImageData, console: Console | None = None):
        self.config = config
        self.console = console or Console(stderr=True)
        self.device = select_device(config.device)
        self.precision = select_precision(config.precision, self.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # picks fast transposed-convolution kernels per shape
        if config.threads:
            torch.set_num_threads(config.threads)  # on a shared machine, fewer threads than cores run faster
        torch.manual_seed(config.seed)

        # NHWC lets oneDNN/cuDNN skip layout conversions around every convolution (opt-in: --channels-last)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        self.G = build_generator(config).to(self.device, memory_format=self.memory_format)
        self.D = build_discriminator(config).to(self.device, memory_format=self.memory_format)
        self.loss = build_loss(config)
        # D's weights get no gradient during G's update (they would be thrown away): a third less D backward
        self.d_trained_params = [p for p in self.D.parameters() if p.requires_grad]
        betas = (config.beta1, config.beta2)
        # fused: one kernel per optimizer step instead of a dozen elementwise passes (CUDA and CPU)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr, betas=betas, fused=True)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.grad_scaler)

        self.batches = make_batches(data, config.batch_size, self.device,
                                    memory_budget(config.memory_budget, self.device))
        self.data_rng = torch.Generator(device=self.device)
        self.data_rng.manual_seed(config.seed)
        self.epoch_rng_state = self.data_rng.get_state()  # state that regenerates this epoch's order
        # Fixed noise from its own generator: the same grid points every epoch, and no draw on the training RNG.
        self.fixed_noise = sample_latent(config.samples, config,
                                         generator=torch.Generator().manual_seed(config.seed + 1)).to(self.device)
        self.files = RunFiles(config.out, config.model)
        self.step = 0          # optimizer steps done
        self.epoch = 0         # epochs completed
        self.step_in_epoch = 0
        self.stop_requested = False  # set by Ctrl-C; honoured between steps, so a checkpoint is never torn
        self.stop_signal = signal.SIGINT
        self.guard = Guard(self.G, self.D, self.device)  # NaN/Inf watch, no per-step host sync
        self.last_checkpoint_step: int | None = None     # where the last good weights on disk are from
        self.rollbacks = 0
        self.out_of_time = False     # config.budget spent: the run ends cleanly, as if its epochs were done
        self.train_seconds = 0.0     # training time (config.TRAINING_TIME) before the clock last started
        self._clock: float | None = None  # perf_counter() when the training clock started; None: stopped
        # What the step calls: the modules themselves, or compiled wrappers sharing their parameters.
        self.g_forward, self.d_forward = self.G, self.D
        self.compile_pending = config.compile
        self.board = None            # the TensorBoard writer (--tensorboard), open while fit() runs

    def request_stop(self) -> None:
        """Finish the step in flight, save a checkpoint and stop (what the first Ctrl-C does)."""
        self.stop_requested = True

    @contextlib.contextmanager
    def _ctrl_c_stops_cleanly(self):
        """First Ctrl-C (or SIGTERM, what job schedulers send): stop at the next step boundary with a
        checkpoint. Second: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_signal(signum, frame):
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_signal = signum
            self.request_stop()
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self.console.print(f"[yellow]{name}: saving a checkpoint after this step (again to abort)[/yellow]")

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- one step -------------------------------------------------------------------------------

    def _autocast(self):
        if self.precision.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.autocast_dtype)

    def train_step(self, real: torch.Tensor) -> torch.Tensor:
        """One D update then one G update on a real batch [B, C, H, W] in [-1, 1].

        Returns [loss_D, loss_G, D(x), D(G(z))] as a device tensor: reading it back
        is the caller's choice, so no step forces a host synchronisation.
        """
        if self.compile_pending:
            return self._first_compiled_step(real)
        real = real.contiguous(memory_format=self.memory_format)
        B = real.shape[0]
        z = sample_latent(B, self.config, self.device)                        # [B, z_dim]

        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        with self._autocast():
            fake = self.g_forward(z)                                           # [B, C, H, W]
            d_real = self.d_forward(real)                                      # [B] logits
            d_fake = self.d_forward(fake.detach())                             # [B] logits
            loss_d = self.loss.d_loss(d_real.float(), d_fake.float())
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)

        # (2) Update G: maximise log D(G(z)) (non-saturating) or whatever the loss says
        with _no_grad_for(self.d_trained_params):
            with self._autocast():
                d_fake_for_g = self.d_forward(fake)                            # [B] logits, D just updated
                loss_g = self.loss.g_loss(d_fake_for_g.float())
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_g)
        self.scaler.update()

        with torch.no_grad():
            return torch.stack([loss_d.detach(), loss_g.detach(),
                                torch.sigmoid(d_real.detach().float()).mean(),
                                torch.sigmoid(d_fake.detach().float()).mean()])

    def _first_compiled_step(self, real: torch.Tensor) -> torch.Tensor:
        """Compile G and D, and take the first step through them; if compiling fails, undo and go eager.

        Compilation happens during the first forward and backward, after some weights may already
        have moved, so everything the step changes is saved first and restored on failure.
        """
        self.compile_pending = False
        saved = self._snapshot()
        self.g_forward, self.d_forward = torch.compile(self.G), torch.compile(self.D)
        try:
            return self.train_step(real)
        except Exception as exc:  # a compiler failure, whatever its type; a real bug fails again in eager
            self._restore(saved)
            self.g_forward, self.d_forward = self.G, self.D
            message = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
            self.console.print(f"[yellow]warning[/yellow]: --compile failed ({message[:300]}); "
                               f"training continues in eager mode.")
            return self.train_step(real)

    def _snapshot(self) -> dict:
        clone = lambda sd: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in sd.items()}
        return {"G": clone(self.G.state_dict()), "D": clone(self.D.state_dict()),
                "opt_g": copy.deepcopy(self.opt_g.state_dict()), "opt_d": copy.deepcopy(self.opt_d.state_dict()),
                "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _restore(self, saved: dict) -> None:
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        self.opt_g.load_state_dict(saved["opt_g"])
        self.opt_d.load_state_dict(saved["opt_d"])
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        if saved["scaler"]:
            self.scaler.load_state_dict(saved["scaler"])
        torch.set_rng_state(saved["rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)

    # -- samples, logs, checkpoints ---------------------------------------------------------------

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Samples in eval mode (BatchNorm running statistics) at the run's precision, leaving no trace on
        training state (ganzoo.sampling.generate)."""
        return generate(self.G, z, autocast=self.precision.autocast_dtype)

    def save_epoch_grid(self, path: Path | None = None) -> Path:
        """The fixed noise's samples, by default as this epoch's grid (and TensorBoard's image of this step)."""
        nrow = max(1, int(math.sqrt(self.config.samples)))
        images = self.generate(self.fixed_noise)
        if self.board:
            self.board.add_image("samples/fixed_noise", make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1)),
                                 self.step)
        return save_grid(images, path or self.files.epoch_grid(self.epoch), nrow=nrow)

    def log(self, record: dict) -> None:
        """One record to metrics.jsonl, and its numbers to TensorBoard: train/<name>, or eval/<name> for scores."""
        self.files.root.mkdir(parents=True, exist_ok=True)
        with open(self.files.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.board:
            group = "eval" if "eval_n" in record else "train"
            for key, value in record.items():
                if key not in ("step", "epoch", "time", "eval_n") and isinstance(value, (int, float)):
                    self.board.add_scalar(f"{group}/{key}", value, record["step"])

    def _open_board(self) -> None:
        if self.config.tensorboard and self.board is None:
            # purge_step: events a resumed or rolled-back run wrote after its checkpoint's step are dropped
            self.board = summary_writer_class()(log_dir=str(self.files.tensorboard),
                                                purge_step=self.step + 1 if self.step else None)

    def _close_board(self) -> None:
        if self.board:
            self.board.close()
            self.board = None

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        tensors |= {f"D.{k}": v for k, v in self.D.state_dict().items()}
        og, og_info = flatten_optimizer(self.opt_g, "opt_g")
        od, od_info = flatten_optimizer(self.opt_d, "opt_d")
        tensors |= og | od
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data_epoch"] = self.epoch_rng_state
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        extra = {"step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                 "train_seconds": self.trained_seconds(), "opt_g": og_info, "opt_d": od_info,
                 "scaler": self.scaler.state_dict()}
        return tensors, extra

    def save_checkpoint(self) -> Path:
        self.guard.verify(self.step)  # raises Diverged rather than write a NaN over the last good weights
        tensors, extra = self.state_tensors()
        path = save_tensors(self.files.checkpoint, tensors, "checkpoint", self.config, extra)
        self.last_checkpoint_step = self.step
        save_generator(self.files.generator, self.G, self.config)
        return path

    def load_checkpoint(self, path: Path) -> None:
        tensors, metadata = read_tensors(path)
        if metadata.get("ganzoo.kind") != "checkpoint":
            raise GanzooError(f"{path} is a generator-only file; resuming needs checkpoint.safetensors.")
        load_state(self.G, tensors, "G.", "generator")
        load_state(self.D, tensors, "D.", "discriminator")
        try:  # a hand-edited or damaged state: one sentence, whatever is wrong with it
            extra = json.loads(metadata["ganzoo.state"])
            step, epoch, step_in_epoch = (extra[k] for k in ("step", "epoch", "step_in_epoch"))
            if not all(type(v) is int and v >= 0 for v in (step, epoch, step_in_epoch)):
                raise ValueError(f"bad step counters {step!r}, {epoch!r}, {step_in_epoch!r}")
            train_seconds = extra.get("train_seconds", 0.0)          # absent from checkpoints of ganzoo < 0.2
            if type(train_seconds) not in (int, float) or not 0 <= train_seconds < math.inf:
                raise ValueError(f"bad training time {train_seconds!r}")
            unflatten_optimizer(self.opt_g, tensors, "opt_g", extra["opt_g"])
            unflatten_optimizer(self.opt_d, tensors, "opt_d", extra["opt_d"])
            if extra.get("scaler"):
                self.scaler.load_state_dict(extra["scaler"])
            torch.Generator().set_state(tensors["rng.data_epoch"])  # validates before anything is changed
            torch.set_rng_state(tensors["rng.torch"])
            if self.device.type == "cuda" and "rng.cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        except GanzooError:
            raise
        except (KeyError, ValueError, TypeError, AttributeError, RuntimeError) as exc:
            raise GanzooError(f"{path} is damaged: its training state is missing or malformed "
                              f"({type(exc).__name__}: {str(exc)[:120]}).") from None
        steps_per_epoch = self.batches.steps_per_epoch
        if step_in_epoch > steps_per_epoch or step != epoch * steps_per_epoch + step_in_epoch:
            raise GanzooError(f"{path} was written at step {step} (epoch {epoch}, step {step_in_epoch} in it), which "
                              f"does not fit the data's {steps_per_epoch} steps per epoch: the dataset changed "
                              f"since; resume with the same data, or start a new run.")
        self.epoch_rng_state = tensors["rng.data_epoch"]
        self.step, self.epoch, self.step_in_epoch = step, epoch, step_in_epoch
        self.train_seconds = float(train_seconds)
        if self._clock is not None:
            self._clock = time.perf_counter()
        self.last_checkpoint_step = step
        self.guard.reset(step)
        self._trim_log()

    def _trim_log(self) -> None:
        """Drop log lines written after the checkpoint (and any torn last line) before continuing."""
        if not self.files.metrics.exists():
            return
        kept = [json.dumps(r) for r in read_metrics(self.files.metrics) if r.get("step", 0) <= self.step]
        atomic_write(self.files.metrics, lambda tmp: tmp.write_text("".join(k + "\n" for k in kept)))

    # -- the loop ---------------------------------------------------------------------------------

    def describe(self) -> str:
        return (f"G {count_parameters(self.G) / 1e6:.2f}M params, D {count_parameters(self.D) / 1e6:.2f}M params, "
                f"{len(self.batches.images)} images "
                f"({'streamed from host memory' if self.batches.streamed else 'held on the device'}), "
                f"{self.batches.steps_per_epoch} steps/epoch, "
                f"device {self.device}, precision {self.precision.name}")

    def fit(self) -> Path:
        """Train until config.epochs are done; returns the generator file's path.

        A divergence stops the run (or, with on_divergence="rollback", reloads the last checkpoint
        with half the learning rate); a failed write stops it keeping the last good checkpoint.
        """
        try:
            while True:
                try:
                    self._open_board()
                    return self._fit()
                except Diverged as exc:
                    spent = self.trained_seconds()
                    self._close_board()                     # reopened at the checkpoint's step
                    self._after_divergence(exc)
                    self.train_seconds = spent              # one budget for the whole run, rollbacks included
                except OSError as exc:
                    raise GanzooError(f"Could not write {exc.filename or self.files.root} ({exc.strerror or exc}); "
                                      f"training stopped at step {self.step}. {self._last_good()} Free some space "
                                      f"(or fix the folder) and continue with: ganzoo run --resume {self.files.root}"
                                      ) from None
        finally:
            self._close_board()

    # -- the training clock (what --budget counts: config.TRAINING_TIME) ------------------------------

    def trained_seconds(self) -> float:
        """Training time of the run so far, earlier segments (resumes) included."""
        running = time.perf_counter() - self._clock if self._clock is not None else 0.0
        return self.train_seconds + running

    def _start_clock(self) -> None:
        if self._clock is None:
            self._clock = time.perf_counter()

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self.train_seconds = self.trained_seconds()
            self._clock = None

    def budget_spent(self) -> bool:
        return bool(self.config.budget) and self.trained_seconds() >= self.config.budget

    def position(self) -> str:
        """Where training stands, numbered as the progress line numbers it: 'step 704 (epoch 2, 236/468 steps)'."""
        steps_per_epoch = self.batches.steps_per_epoch
        if self.step_in_epoch:
            return f"step {self.step} (epoch {self.epoch + 1}, {self.step_in_epoch}/{steps_per_epoch} steps)"
        return f"step {self.step} (end of epoch {self.epoch})" if self.epoch else f"step {self.step} (start)"

    def _fit(self) -> Path:
        cfg = self.config
        steps_per_epoch = self.batches.steps_per_epoch
        total_steps = cfg.epochs * steps_per_epoch
        progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False)
        stats_sum = torch.zeros(4, device=self.device)
        window_steps, window_start = 0, time.perf_counter()
        self._start_clock()
        try:
            with progress, self._ctrl_c_stops_cleanly():
                unlimited = cfg.epochs >= UNLIMITED_EPOCHS                    # a --budget run: no end in steps
                of_epochs = "" if unlimited else f"/{cfg.epochs}"
                task = progress.add_task("train", total=None if unlimited else total_steps, completed=self.step,
                                         epoch=f"{self.epoch + 1}{of_epochs}", stats="")
                while self.epoch < cfg.epochs:
                    self.data_rng.set_state(self.epoch_rng_state)
                    for real in self.batches.epoch(self.data_rng, start=self.step_in_epoch):
                        stats = self.train_step(real)
                        stats_sum += stats
                        self.step += 1
                        self.step_in_epoch += 1
                        window_steps += 1
                        self.guard.after_step(self.step, stats)
                        self.out_of_time = self.budget_spent()
                        if (self.step % cfg.log_every == 0 or self.step_in_epoch == steps_per_epoch
                                or self.out_of_time):                     # the log reaches the last step
                            means = (stats_sum / window_steps).tolist()  # the one host sync per window
                            elapsed = time.perf_counter() - window_start
                            record = self._record(means, window_steps * cfg.batch_size / elapsed)
                            self.log(record)
                            progress.update(task, stats=self._format(record))
                            self._check_finite(record, window_steps)
                            stats_sum.zero_()
                            window_steps, window_start = 0, time.perf_counter()
                        progress.update(task, completed=self.step)
                        if (self.stop_requested or self.out_of_time) and self.step_in_epoch < steps_per_epoch:
                            break
                        if self.step % cfg.checkpoint_every == 0 and self.step_in_epoch < steps_per_epoch:
                            self.save_checkpoint()
                    if self.stop_requested and self.step_in_epoch < steps_per_epoch:
                        self.save_checkpoint()
                        raise self._interrupted()
                    if self.out_of_time and self.step_in_epoch < steps_per_epoch:
                        self.save_checkpoint()
                        grid = self.save_epoch_grid(self.files.step_grid(self.step))
                        progress.console.print(f"time budget of {cfg.budget:g}s reached at {self.position()}: "
                                               f"samples {grid}")
                        if cfg.eval_every:                     # the run's end: its final evaluation
                            self.evaluate(progress.console)
                        break
                    # epoch done: new order next epoch, grid, checkpoint
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.epoch_rng_state = self.data_rng.get_state()
                    grid = self.save_epoch_grid()
                    self.save_checkpoint()
                    progress.update(task, epoch=f"{min(self.epoch + 1, cfg.epochs)}{of_epochs}")
                    progress.console.print(f"epoch {self.epoch}{of_epochs} done, step {self.step}: "
                                           f"samples {grid}")
                    last = self.epoch == cfg.epochs or self.out_of_time
                    if cfg.eval_every and (self.epoch % cfg.eval_every == 0 or last) and not self.stop_requested:
                        self.evaluate(progress.console)
                    if self.stop_requested and self.epoch < cfg.epochs:
                        raise self._interrupted()
                    if self.out_of_time:
                        progress.console.print(f"time budget of {cfg.budget:g}s reached at {self.position()}")
                        break
        except KeyboardInterrupt:
            raise Interrupted(f"Interrupted at step {self.step} (second Ctrl-C); the last checkpoint in "
                              f"{self.files.root} is intact. Continue with: ganzoo run --resume "
                              f"{self.files.root}") from None
        finally:
            self._stop_clock()
        return self.files.generator

    def evaluate(self, console: Console) -> dict[str, float]:
        """Score G with the run's metrics (ganzoo.evaluate); logged to metrics.jsonl and printed.
        Not training time: the clock stops while it scores."""
        running = self._clock is not None
        self._stop_clock()
        try:
            scores = evaluate(self.G, config=self.config, metrics=self.config.metrics or None, n=self.config.eval_n,
                              device=self.device)
        finally:
            if running:
                self._start_clock()
        epoch = self.epoch + self.step_in_epoch / self.batches.steps_per_epoch
        self.log({"step": self.step, "epoch": epoch, "eval_n": self.config.eval_n, **scores, "time": time.time()})
        console.print(f"{self.position()} eval: {format_scores(scores)}")
        return scores

    def _interrupted(self) -> Interrupted:
        by = "" if self.stop_signal == signal.SIGINT else f" by {signal.Signals(self.stop_signal).name}"
        exc = Interrupted(f"Interrupted{by} at step {self.step}; checkpoint saved in {self.files.root}. "
                          f"Continue with: ganzoo run --resume {self.files.root}")
        exc.exit_code = 128 + self.stop_signal
        return exc

    def _last_good(self) -> str:
        if self.last_checkpoint_step is None:
            return "No checkpoint had been written yet."
        return (f"The last good weights are in {self.files.checkpoint} (step {self.last_checkpoint_step}; "
                f"the generator alone in {self.files.generator}).")

    def _after_divergence(self, exc: Diverged) -> None:
        """Roll back to the last checkpoint with half the learning rate, or raise the one-line error."""
        if (self.config.on_divergence == "rollback" and self.last_checkpoint_step is not None
                and self.rollbacks < MAX_ROLLBACKS):
            self.rollbacks += 1
            lrs = [[g["lr"] for g in opt.param_groups] for opt in (self.opt_g, self.opt_d)]
            self.load_checkpoint(self.files.checkpoint)
            for opt, before in zip((self.opt_g, self.opt_d), lrs):
                for group, lr in zip(opt.param_groups, before):
                    group["lr"] = lr / 2
            self.console.print(f"[yellow]warning[/yellow]: training diverged ({exc}); rolled back to the checkpoint "
                               f"of step {self.step} with the learning rate halved to {lrs[0][0] / 2:.3g} "
                               f"(rollback {self.rollbacks} of {MAX_ROLLBACKS}).", soft_wrap=True)
            return
        if self.config.on_divergence == "rollback" and self.last_checkpoint_step is not None:
            advice = f"It still diverged after {MAX_ROLLBACKS} rollbacks; start again with a lower --lr."
        elif self.last_checkpoint_step is not None:
            advice = (f"Continue from there with the learning rate halved at each divergence: ganzoo run --resume "
                      f"{self.files.root} --on-divergence rollback")
        else:
            advice = "Start again with a lower --lr (or --on-divergence rollback and more frequent checkpoints)."
        raise GanzooError(f"Training diverged: {exc}; stopped. {self._last_good()} {advice}")

    def _record(self, means: list[float], images_per_s: float) -> dict:
        loss_d, loss_g, d_real, d_fake = means
        return {"step": self.step, "epoch": self.epoch + self.step_in_epoch / self.batches.steps_per_epoch,
                "loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
                "images_per_s": images_per_s, "train_time": self.trained_seconds(), "time": time.time()}

    @staticmethod
    def _format(r: dict) -> str:
        return (f"loss_D {r['loss_d']:.3f}  loss_G {r['loss_g']:.3f}  D(x) {r['d_real']:.2f}  "
                f"D(G(z)) {r['d_fake']:.2f}  {r['images_per_s']:,.0f} img/s")

    def _check_finite(self, record: dict, window_steps: int) -> None:
        """Raises Diverged on NaN/Inf losses; warns when D has won for long."""
        warning = self.guard.check_record(record, window_steps)
        if warning:
            self.console.print(f"[yellow]warning[/yellow]: {warning}", soft_wrap=True)


@contextlib.contextmanager
def _no_grad_for(params: list[torch.Tensor]):
    """Compute no gradient for these parameters inside the block (inputs still get theirs)."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def resume_config(run_dir: str | Path) -> RunConfig:
    """The config a run directory's checkpoint was written with."""
    files = RunFiles(run_dir)
    path = files.checkpoint
    if not files.root.is_dir():
        raise GanzooError(f"Nothing to resume: {run_dir} is not a folder.")
    if not path.is_file():
        if files.config.is_file():
            raise GanzooError(f"Nothing to resume: the run in {run_dir} stopped before its first checkpoint. "
                              f"Start it again with --overwrite.")
        raise GanzooError(f"Nothing to resume: {path} does not exist.")
    _, metadata = read_tensors(path)
    return config_of(metadata, path)
