"""The training loop: D update, then G update, with fixed-noise grids, logs and checkpoints.

The loop owns the optimisers, AMP and the order of updates; a recipe's plugins (loss, regularisers,
augmentation: ganzoo.recipe) only return tensors.
"""

from __future__ import annotations

import contextlib
import copy
import functools
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

from .checkpoint import (EMA_PREFIX, atomic_write, config_of, flatten_optimizer, load_state, read_tensors, save_generator,
                         save_tensors, unflatten_optimizer)
from .config import UNLIMITED_EPOCHS, RunConfig, parse_betas
from .data import ImageData, make_batches, memory_budget
from .device import select_device, select_precision
from .errors import GanzooError, Interrupted
from .guard import Diverged, Guard
from .models import build_discriminator, build_generator, build_loss, count_parameters, is_conditional, sample_latent
from .plugins import registries
from .recipe import (EMA, LossAdapter, StepContext, build_augment, build_regularizers, lazy_ratio, make_optimizer,
                     schedule_factor)
from .evaluate import evaluate, format_scores
from .runfiles import RunFiles, read_metrics
from .sampling import classes, generate, save_grid

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
    # This process's share of each global batch (ganzoo.distributed sets them under torchrun): rank r of
    # `world` trains on the r-th slice of every batch and of its z.
    rank, world = 0, 1
    signal_repeat_grace = 0.0    # seconds in which a repeated Ctrl-C counts as the same one

    def __init__(self, config: RunConfig, data: ImageData, console: Console | None = None):
        check_labels(config, data)       # a conditional model: labels there, and its num_classes theirs
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
        self.conditional = is_conditional(config)     # G(z, y) and D(x, y), y the batch's labels
        self.G = build_generator(config).to(self.device, memory_format=self.memory_format)
        self.D = build_discriminator(config).to(self.device, memory_format=self.memory_format)
        regs = registries()
        self.loss = LossAdapter(build_loss(config, regs))
        self.regularizers = build_regularizers(config.regularizers, regs.regularizers)
        self.augment = build_augment(config.augment, regs.augmentations)
        # D's weights get no gradient during G's update (they would be thrown away): a third less D backward
        self.d_trained_params = [p for p in self.D.parameters() if p.requires_grad]
        # One optimiser per network; under lazy regularisation D's lr and betas are rescaled by k/(k+1)
        betas = (config.beta1, config.beta2)
        self.base_lr = {"G": config.lr_g or config.lr, "D": (config.lr_d or config.lr) * lazy_ratio(self.regularizers)}
        self.opt_g = make_optimizer(config.optimizer_g, self.G.parameters(), config.lr_g or config.lr,
                                    parse_betas(config.betas_g) or betas)
        self.opt_d = make_optimizer(config.optimizer_d, self.D.parameters(), config.lr_d or config.lr,
                                    parse_betas(config.betas_d) or betas, lazy_ratio(self.regularizers))
        self.lr_scale = 1.0          # halved at each --on-divergence rollback
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.grad_scaler)
        self.ema = EMA(self.G, config.ema) if config.ema else None
        # What a step reports, by name: the losses, the loss's own statistics, each regulariser's penalty
        self.stat_names = ["loss_d", "loss_g", *self.loss.statistic_names(), *(r.name for r in self.regularizers)]
        self.last_stats = torch.zeros(len(self.stat_names), device=self.device)  # a phase not run keeps its last

        self.batches = make_batches(data, config.batch_size, self.device,
                                    memory_budget(config.memory_budget, self.device), share=(self.rank, self.world),
                                    labelled=self.conditional)
        self.data_rng = torch.Generator(device=self.device)
        self.data_rng.manual_seed(config.seed)
        self.epoch_rng_state = self.data_rng.get_state()  # state that regenerates this epoch's order
        # Fixed noise from its own generator: the same grid points every epoch, and no draw on the training RNG.
        self.fixed_noise = sample_latent(config.samples, config,
                                         generator=torch.Generator().manual_seed(config.seed + 1)).to(self.device)
        fixed_labels = classes(config, range(config.samples))      # sample i: class i % num_classes
        self.fixed_labels = fixed_labels.to(self.device) if fixed_labels is not None else None
        self.files = RunFiles(config.out, config.model)
        self.step = 0          # optimizer steps done
        self.d_steps = 0       # the step's own count of D updates (= step in a run; a caller may step alone)
        self.epoch = 0         # epochs completed
        self.step_in_epoch = 0
        self.stop_requested = False  # set by Ctrl-C; honoured between steps, so a checkpoint is never torn
        self.stop_signal = signal.SIGINT
        self.total_steps = None if config.epochs >= UNLIMITED_EPOCHS else config.epochs * self.batches.steps_per_epoch
        if config.lr_schedule == "linear" and self.total_steps is None:
            raise GanzooError("--lr-schedule linear decays to 0 at the last epoch: give --epochs.")
        self.guard = Guard(self.G, self.D, self.device, n_stats=len(self.stat_names),
                           won=self.loss.won)                 # NaN/Inf watch, no per-step host sync
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

        first_at: list[float] = []   # when the first signal came

        def on_signal(signum, frame):
            repeated = bool(first_at) and time.monotonic() - first_at[0] <= self.signal_repeat_grace
            if self.stop_requested and not repeated:
                raise KeyboardInterrupt
            if first_at:             # this rank's stop is asked for already, not yet agreed on (distributed)
                return
            first_at.append(time.monotonic())
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

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's outputs [B] for images [B, C, H, W] (of classes `labels` [B] for a conditional D), through the run's
        augmentation (the same policy for real, fake and anything a loss or regulariser shows D)."""
        images = self.augment(images) if self.augment else images
        return self.d_forward(images) if labels is None else self.d_forward(images, labels)

    def train_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One step of the recipe on a real batch [B, C, H, W] in [-1, 1] (and its labels [B], which a conditional
        model is trained on: G draws the same classes, D judges real and fake as of their class): D's update,
        its lazy regularisers when due, and G's update every n_critic-th step (each D step on a fresh real batch).

        Returns the statistics named by `stat_names` ([loss_D, loss_G, D(x), D(G(z))] for DCGAN) as one device
        tensor: reading it back is the caller's choice, so no step forces a host synchronisation.
        """
        if self.compile_pending:
            return self._first_compiled_step(real, labels)
        real = real.contiguous(memory_format=self.memory_format)
        B = real.shape[0]
        z = self.draw_latent(B)                                                # [B, z_dim]
        g_step = (self.d_steps + 1) % self.config.n_critic == 0
        self._set_learning_rates()
        stats = {}
        y = self._step_labels(labels, B)                                       # [B] classes, or None
        discriminate = self.discriminate if y is None else functools.partial(self.discriminate, labels=y)

        # (1) Update D: maximise log D(x) + log(1 - D(G(z))), or whatever the loss says, plus its regularisers
        with self._autocast():
            with torch.set_grad_enabled(g_step):                               # G's graph only when G steps
                fake = self.g_forward(z) if y is None else self.g_forward(z, y)  # [B, C, H, W]
            d_real = discriminate(real)                                        # [B] logits
            d_fake = discriminate(fake.detach())                               # [B] logits
            context = StepContext(discriminate, real, fake.detach(), "Dmain")
            loss_d = self.loss.d_loss(d_real.float(), d_fake.float(), context)
            for reg in self.regularizers:
                if not reg.lazy:
                    stats[reg.name] = penalty = reg.penalty(context).float()
                    loss_d = loss_d + reg.weight * penalty
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_d)

        # (1b) D's lazy regularisers, every k steps: an update of their own, weighted by k
        for reg in self.regularizers:
            if reg.lazy and self.d_steps % reg.every == 0:
                with self._autocast():
                    stats[reg.name] = penalty = reg.penalty(StepContext(discriminate, real, fake.detach(),
                                                                        "Dreg")).float()
                self.scaler.update()
                self.opt_d.zero_grad(set_to_none=True)
                self.scaler.scale(penalty * (reg.weight * reg.every)).backward()
                self.scaler.step(self.opt_d)

        # (2) Update G: maximise log D(G(z)) (non-saturating) or whatever the loss says
        if g_step:
            with _no_grad_for(self.d_trained_params):
                with self._autocast():
                    d_fake_for_g = discriminate(fake)                          # [B] logits, D just updated
                    loss_g = self.loss.g_loss(d_fake_for_g.float(), StepContext(discriminate, real, fake, "Gmain"))
                self.opt_g.zero_grad(set_to_none=True)
                self.scaler.scale(loss_g).backward()
            self.scaler.step(self.opt_g)
            if self.ema:
                self.ema.update(self.G, updates=self.d_steps // self.config.n_critic)
            stats["loss_g"] = loss_g
        self.scaler.update()
        self.d_steps += 1

        with torch.no_grad():
            stats |= {"loss_d": loss_d, **self.loss.statistics(d_real.detach().float(), d_fake.detach().float())}
            self.last_stats = torch.stack([stats[name].detach().float() if name in stats else self.last_stats[i]
                                           for i, name in enumerate(self.stat_names)])
            return self.last_stats

    def _step_labels(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The classes a conditional step trains on (the real batch's, for G's samples too); None unconditionally."""
        if not self.conditional:
            return None
        if labels is None or labels.shape != (batch,):
            raise GanzooError(f"The conditional model {self.config.model!r} trains on labelled batches: give "
                              f"train_step the batch's {batch} labels.")
        return labels.to(self.device)

    def draw_latent(self, n: int) -> torch.Tensor:
        """z for a step's n images: [n, z_dim], from the training RNG."""
        return sample_latent(n, self.config, self.device)

    def _set_learning_rates(self) -> None:
        """Each optimiser's lr for this step: its network's, times the schedule's factor (and rollbacks' halvings)."""
        factor = schedule_factor(self.config.lr_schedule, self.step, self.total_steps) * self.lr_scale
        for opt, lr in ((self.opt_g, self.base_lr["G"]), (self.opt_d, self.base_lr["D"])):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def _first_compiled_step(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Compile G and D, and take the first step through them; if compiling fails, undo and go eager.

        Compilation happens during the first forward and backward, after some weights may already
        have moved, so everything the step changes is saved first and restored on failure.
        """
        self.compile_pending = False
        saved = self._snapshot()
        self.g_forward, self.d_forward = torch.compile(self.G), torch.compile(self.D)
        try:
            return self.train_step(real, labels)
        except Exception as exc:  # a compiler failure, whatever its type; a real bug fails again in eager
            self._restore(saved)
            self.g_forward, self.d_forward = self.G, self.D
            message = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
            self.console.print(f"[yellow]warning[/yellow]: --compile failed ({message[:300]}); "
                               f"training continues in eager mode.")
            return self.train_step(real, labels)

    def _snapshot(self) -> dict:
        clone = lambda sd: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in sd.items()}
        return {"G": clone(self.G.state_dict()), "D": clone(self.D.state_dict()),
                "opt_g": copy.deepcopy(self.opt_g.state_dict()), "opt_d": copy.deepcopy(self.opt_d.state_dict()),
                "G_ema": clone(self.ema.G.state_dict()) if self.ema else None, "last_stats": self.last_stats.clone(),
                "d_steps": self.d_steps,
                "scaler": self.scaler.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}

    def _restore(self, saved: dict) -> None:
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        if self.ema:
            self.ema.G.load_state_dict(saved["G_ema"])
        self.last_stats = saved["last_stats"]
        self.d_steps = saved["d_steps"]
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

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator samples come from: the averaged G when the run keeps one (--ema), else G."""
        return self.ema.G if self.ema else self.G

    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Samples (of classes y for a conditional model) in eval mode (BatchNorm running statistics) at the run's
        precision, leaving no trace on training state (ganzoo.sampling.generate), from the averaged G when there
        is one."""
        return generate(self.sampler, z, y, autocast=self.precision.autocast_dtype)

    def save_epoch_grid(self, path: Path | None = None) -> Path:
        """The fixed noise's samples, by default as this epoch's grid (and TensorBoard's image of this step);
        a conditional model's in rows of num_classes, so each column is one class."""
        nrow = self.config.num_classes or max(1, int(math.sqrt(self.config.samples)))
        images = self.generate(self.fixed_noise, self.fixed_labels)
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
        if self.ema:
            tensors |= {f"{EMA_PREFIX}{k}": v for k, v in self.ema.G.state_dict().items()}
        tensors["stats.last"] = self.last_stats
        og, og_info = flatten_optimizer(self.opt_g, "opt_g")
        od, od_info = flatten_optimizer(self.opt_d, "opt_d")
        tensors |= og | od
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.data_epoch"] = self.epoch_rng_state
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        extra = {"step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                 "train_seconds": self.trained_seconds(), "opt_g": og_info, "opt_d": od_info,
                 "scaler": self.scaler.state_dict(), "lr_scale": self.lr_scale, "d_steps": self.d_steps}
        return tensors, extra

    def save_checkpoint(self) -> Path:
        self.guard.verify(self.step)  # raises Diverged rather than write a NaN over the last good weights
        tensors, extra = self.state_tensors()
        path = save_tensors(self.files.checkpoint, tensors, "checkpoint", self.config, extra)
        self.last_checkpoint_step = self.step
        save_generator(self.files.generator, self.sampler, self.config)
        return path

    def load_checkpoint(self, path: Path) -> None:
        tensors, metadata = read_tensors(path)
        if metadata.get("ganzoo.kind") != "checkpoint":
            raise GanzooError(f"{path} is a generator-only file; resuming needs checkpoint.safetensors.")
        load_state(self.G, tensors, "G.", "generator")
        load_state(self.D, tensors, "D.", "discriminator")
        if self.ema:
            load_state(self.ema.G, tensors, EMA_PREFIX, "averaged generator")
        try:  # a hand-edited or damaged state: one sentence, whatever is wrong with it
            extra = json.loads(metadata["ganzoo.state"])
            step, epoch, step_in_epoch = (extra[k] for k in ("step", "epoch", "step_in_epoch"))
            if not all(type(v) is int and v >= 0 for v in (step, epoch, step_in_epoch)):
                raise ValueError(f"bad step counters {step!r}, {epoch!r}, {step_in_epoch!r}")
            train_seconds = extra.get("train_seconds", 0.0)          # absent from checkpoints of ganzoo < 0.2
            if type(train_seconds) not in (int, float) or not 0 <= train_seconds < math.inf:
                raise ValueError(f"bad training time {train_seconds!r}")
            lr_scale = extra.get("lr_scale", 1.0)
            d_steps = extra.get("d_steps", step)
            if type(d_steps) is not int or d_steps < 0:
                raise ValueError(f"bad D step count {d_steps!r}")
            if type(lr_scale) not in (int, float) or not 0 < lr_scale <= 1:
                raise ValueError(f"bad learning-rate scale {lr_scale!r}")
            last_stats = tensors.get("stats.last", torch.zeros(len(self.stat_names)))
            if last_stats.shape != self.last_stats.shape:
                raise ValueError(f"{len(last_stats)} step statistics, this recipe reports {len(self.stat_names)}")
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
        self.lr_scale = float(lr_scale)
        self.d_steps = d_steps
        self.last_stats = last_stats.to(self.device)
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

    # -- why the loop stops: each condition by name ---------------------------------------------------

    @property
    def epochs_done(self) -> bool:
        return self.epoch >= self.config.epochs

    @property
    def epoch_ended(self) -> bool:
        return self.step_in_epoch == self.batches.steps_per_epoch

    def _fit(self) -> Path:
        """The loop: a step, its log window, then what the step's position calls for (an epoch's end, a stop
        requested by Ctrl-C, the time budget spent, a periodic checkpoint)."""
        cfg = self.config
        progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False)
        unlimited = cfg.epochs >= UNLIMITED_EPOCHS                    # a --budget run: no end in steps
        self.of_epochs = "" if unlimited else f"/{cfg.epochs}"
        self._start_clock()
        try:
            with progress, self._ctrl_c_stops_cleanly():
                task = progress.add_task("train", total=self.total_steps, completed=self.step,
                                         epoch=f"{self.epoch + 1}{self.of_epochs}", stats="")
                window = LogWindow(len(self.stat_names), self.device)
                batches = None
                while not self.epochs_done:
                    if batches is None:                               # an epoch starts (or resumes mid-way)
                        self.data_rng.set_state(self.epoch_rng_state)
                        batches = self.batches.labelled(self.data_rng, start=self.step_in_epoch)
                    real, labels = next(batches)                      # labels: None unless conditional
                    stats = self.train_step(real, labels)
                    self.step += 1
                    self.step_in_epoch += 1
                    window.add(stats)
                    self.guard.after_step(self.step, stats)
                    self.out_of_time = self.budget_spent()
                    self._agree_on_stopping()
                    if self.step % cfg.log_every == 0 or self.epoch_ended or self.out_of_time:
                        self._log_window(window, progress, task)     # the log reaches the last step
                    progress.update(task, completed=self.step)
                    if self.epoch_ended:
                        batches = None
                        self._end_epoch(progress, task)
                        if self.stop_requested and not self.epochs_done:
                            raise self._interrupted()
                        if self.out_of_time:
                            progress.console.print(f"time budget of {cfg.budget:g}s reached at {self.position()}")
                            break
                    elif self.stop_requested:
                        self.save_checkpoint()
                        raise self._interrupted()
                    elif self.out_of_time:
                        self._end_mid_epoch(progress)
                        break
                    elif self.step % cfg.checkpoint_every == 0:
                        self.save_checkpoint()
        except KeyboardInterrupt:
            raise Interrupted(f"Interrupted at step {self.step} (second Ctrl-C); the last checkpoint in "
                              f"{self.files.root} is intact. Continue with: ganzoo run --resume "
                              f"{self.files.root}") from None
        finally:
            self._stop_clock()
        return self.files.generator

    def _agree_on_stopping(self) -> None:
        """Where ranks agree on stop_requested and out_of_time (ganzoo.distributed); one process has decided."""

    def _log_window(self, window: "LogWindow", progress: Progress, task) -> None:
        """The window's mean statistics to metrics.jsonl and the progress line (the one host sync per window)."""
        record = self._record(*window.read(self.config.batch_size))
        self.log(record)
        progress.update(task, stats=self._format(record))
        self._check_finite(record, window.steps)
        window.reset()

    def _end_epoch(self, progress: Progress, task) -> None:
        """An epoch done: the next one's order, its grid, a checkpoint and, when due, an evaluation."""
        self.epoch += 1
        self.step_in_epoch = 0
        self.epoch_rng_state = self.data_rng.get_state()
        grid = self.save_epoch_grid()
        self.save_checkpoint()
        progress.update(task, epoch=f"{min(self.epoch + 1, self.config.epochs)}{self.of_epochs}")
        progress.console.print(f"epoch {self.epoch}{self.of_epochs} done, step {self.step}: samples {grid}")
        every = self.config.eval_every
        if every and (self.epoch % every == 0 or self.epochs_done or self.out_of_time) and not self.stop_requested:
            self.evaluate(progress.console)

    def _end_mid_epoch(self, progress: Progress) -> None:
        """The time budget spent mid-epoch: the run ends as a finished one does (checkpoint, grid, evaluation)."""
        self.save_checkpoint()
        grid = self.save_epoch_grid(self.files.step_grid(self.step))
        progress.console.print(f"time budget of {self.config.budget:g}s reached at {self.position()}: "
                               f"samples {grid}")
        if self.config.eval_every:                     # the run's end: its final evaluation
            self.evaluate(progress.console)

    def evaluate(self, console: Console) -> dict[str, float]:
        """Score G with the run's metrics (ganzoo.evaluate); logged to metrics.jsonl and printed.
        Not training time: the clock stops while it scores."""
        running = self._clock is not None
        self._stop_clock()
        try:
            scores = evaluate(self.sampler, config=self.config, metrics=self.config.metrics or None, n=self.config.eval_n,
                              device=self.device)
        finally:
            if running:
                self._start_clock()
        epoch = self.epoch + self.step_in_epoch / self.batches.steps_per_epoch
        self.log({"step": self.step, "epoch": epoch, "eval_n": self.config.eval_n, **scores, "time": time.time(),
                  "protocol": scores.protocol})            # how each score was made (ganzoo.protocol)
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
            scale = self.lr_scale
            self.load_checkpoint(self.files.checkpoint)
            self.lr_scale = scale / 2
            self._set_learning_rates()
            self.console.print(f"[yellow]warning[/yellow]: training diverged ({exc}); rolled back to the checkpoint "
                               f"of step {self.step} with the learning rate halved to "
                               f"{self.opt_g.param_groups[0]['lr']:.3g} "
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
        """A log record: the window's mean of each statistic the step names, and whether D has won by the
        loss's own rule (d_won: what the guard and compare's "D collapsed" read)."""
        record = {"step": self.step, "epoch": self.epoch + self.step_in_epoch / self.batches.steps_per_epoch,
                  **dict(zip(self.stat_names, means))}
        return record | {"d_won": bool(self.loss.won(record)), "images_per_s": images_per_s,
                         "train_time": self.trained_seconds(), "time": time.time()}

    def _format(self, r: dict) -> str:
        shown = [f"{self.loss.labels.get(n, n)} {r[n]:{'.3f' if n.startswith('loss') else '.2f'}}"
                 for n in self.stat_names]
        return "  ".join(shown) + f"  {r['images_per_s']:,.0f} img/s"

    def _check_finite(self, record: dict, window_steps: int) -> None:
        """Raises Diverged on NaN/Inf losses; warns when D has won for long."""
        warning = self.guard.check_record(record, window_steps)
        if warning:
            self.console.print(f"[yellow]warning[/yellow]: {warning}", soft_wrap=True)


def check_labels(config: RunConfig, data: ImageData) -> None:
    """A conditional model needs the data's class labels: its num_classes is theirs (the dataset's declared
    count, else their names' or the largest label's), and every label must lie below it."""
    if not is_conditional(config):
        return
    labelled = data.labels[data.labels >= 0] if data.labels is not None else None
    if labelled is None or len(labelled) < len(data.labels):
        raise GanzooError(f"The model {config.model!r} is conditioned on class labels, and the dataset "
                          f"{config.data!r} ({config.split}) has {'none' if labelled is None else 'images without one'}"
                          f"; train it on labelled data (e.g. --data mnist).")
    if not config.num_classes:
        config.num_classes = len(data.classes) if data.classes else int(labelled.max()) + 1
    if int(labelled.max()) >= config.num_classes:
        raise GanzooError(f"The dataset {config.data!r} has class label {int(labelled.max())}, and the model is "
                          f"conditioned on {config.num_classes} classes (0..{config.num_classes - 1}).")


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
