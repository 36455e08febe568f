"""TensorBoard: a logger (`ganzoo run --tensorboard`, or `--loggers tensorboard`) writing train/<name> and
eval/<name> scalars and the fixed-noise grid of every epoch to RUN/tensorboard (`tensorboard --logdir runs`).

TensorBoard is an optional extra (pip install 'pyganzoo[tensorboard]'); a run that asks for it without it
installed is refused before any data loads. A resumed or rolled-back run continues the same curves: events
written after the checkpoint's step are purged when it starts again.
"""

from __future__ import annotations

from ganzoo.api import GanzooError, GridRecord, RunConfig, RunFiles, RunInfo, ScoreRecord, WindowRecord, hookimpl

MISSING = "--tensorboard needs TensorBoard, which is not installed: pip install 'pyganzoo[tensorboard]'."
NOT_SCALARS = ("step", "epoch", "time", "eval_n")


class TensorBoard:
    """A run's records as TensorBoard scalars and images."""

    def __init__(self, *, config: RunConfig, files: RunFiles):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise GanzooError(MISSING) from None
        self.writer_class, self.folder, self.writer = SummaryWriter, files.tensorboard, None

    def start(self, run: RunInfo) -> None:
        # purge_step: events a resumed or rolled-back run wrote after its checkpoint's step are dropped
        self.writer = self.writer_class(log_dir=str(self.folder), purge_step=run.step + 1 if run.step else None)

    def _scalars(self, group: str, record: dict, step: int) -> None:
        for key, value in record.items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{group}/{key}", value, step)

    def window(self, record: WindowRecord) -> None:
        self._scalars("train", record.to_dict(), record.step)

    def scores(self, record: ScoreRecord) -> None:
        self._scalars("eval", record.to_dict(), record.step)

    def grid(self, record: GridRecord) -> None:
        from torchvision.utils import make_grid     # here: importing torchvision costs every command a second

        self.writer.add_image("samples/fixed_noise", make_grid(record.images, nrow=record.nrow, normalize=True,
                                                               value_range=(-1, 1)), record.step)

    def finish(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


@hookimpl
def register_loggers(register):
    register("tensorboard", TensorBoard, "TensorBoard scalars and sample grids in RUN/tensorboard (--tensorboard)")
