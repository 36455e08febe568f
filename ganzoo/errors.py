"""The exceptions the CLI turns into a one-line message instead of a traceback."""


class GanzooError(Exception):
    """A problem the user can fix; its message is a complete sentence saying how."""

    exit_code = 1


class Interrupted(GanzooError):
    """The user stopped a run (Ctrl-C); its checkpoint is safe."""

    exit_code = 130
