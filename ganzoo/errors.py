"""The exceptions the CLI turns into a one-line message instead of a traceback."""


class GanzooError(Exception):
    """A problem the user can fix; its message is a complete sentence saying how."""

    exit_code = 1


class Interrupted(GanzooError):
    """The user stopped a run (Ctrl-C); its checkpoint is safe."""

    exit_code = 130


class MalformedData(GanzooError):
    """A dataset's factory broke its contract (float images, 5 channels, labels that do not match): a fault of
    the dataset's code, not of the files the user gave it; the conformance kit fails it."""


class CheckpointError(GanzooError):
    """A checkpoint that cannot be resumed from (damaged, or written for other data); the message names it."""


class Diverged(GanzooError):
    """Losses or weights became NaN/Inf: `what` names which, `first`..`last` the steps it happened between.

    The guard raises it; the training loop either rolls back or raises it again with the whole story
    (where the last good weights are, what to do), and `ganzoo compare` records the run as diverged."""

    def __init__(self, what: str, first: int, last: int, message: str | None = None):
        self.what, self.first, self.last = what, first, last
        super().__init__(message or f"{what} became NaN/Inf between steps {first} and {last}")
