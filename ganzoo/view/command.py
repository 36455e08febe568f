"""The `ganzoo view` subcommand: its flags, and serving the app until Ctrl-C.

Gradio is imported only when the command runs (it is an optional extra), after its settings are made: no usage
report, no version check, its temporary folder a private one that is removed on exit (matplotlib's font cache,
for the training curves, goes there too), so the viewer leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading

from ..config import COMMAND_FIELDS
from ..errors import GanzooError
from ..settings import add_flags, check_values

DEFAULT_PORT = 7860
CLOSE_S = 10                 # seconds a stop may take: the server's shutdown, then the process's exit
LOCAL = ("127.0.0.1", "localhost", "::1")


def add_command(sub) -> None:
    p = sub.add_parser("view", help="the zoo in a browser: sample, walk the latent space, watch training, compare",
                       description="Start a local web app (gradio) over the run folders, weights files and compare "
                                   "reports under the given paths: sample a generator (seed, count, class, EMA or "
                                   "raw G, PNG download), walk its latent space and do vector arithmetic, watch a "
                                   "run train (curves, scores, epoch grids), and compare runs side by side on the "
                                   "same z. It only reads: nothing is written to disk. Needs the extra: pip install "
                                   "'pyganzoo[view]'.")
    p.add_argument("paths", nargs="*", metavar="RUN_OR_FOLDER",
                   help="run folders, weights files, compare report folders, or folders holding them (default runs)")
    add_flags(p, COMMAND_FIELDS["view"], defaults=True)


def _free_port(host: str, first: int) -> int:
    import socket

    for port in range(first, first + 100):
        with contextlib.closing(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)) as s:
            try:
                s.bind((host, port))
                return port
            except OSError:
                continue
    raise GanzooError(f"No free port from {first} to {first + 99} on {host}; give one with --port.")


def cmd_view(args, out=None, console=None) -> int:
    paths = args.paths or ["runs"]
    check_values(COMMAND_FIELDS["view"], args)
    temporary = tempfile.mkdtemp(prefix="ganzoo-view-")
    settings = {"GRADIO_TEMP_DIR": temporary,               # gradio's cache: private, and removed at the end
                "GRADIO_ANALYTICS_ENABLED": "False",        # no usage reports, no version check
                "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", temporary)}   # matplotlib's font cache: not ~/.cache
    try:
        with _environment(settings):
            if args.threads:
                import torch
                torch.set_num_threads(args.threads)
            return _serve(paths, args.host, args.port, out, console)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """These environment variables while the view runs; the previous ones after (for a caller of main())."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _serve(paths, host: str, port: int | None, out, console) -> int:
    from .app import CSS, Viewer, build, gr       # gradio, or the sentence saying how to install it

    viewer = Viewer(paths)
    app = build(viewer)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    app.queue(default_concurrency_limit=1)
    stop = threading.Event()                        # Ctrl-C and SIGTERM stop it from here on, never mid-print
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        chosen = _launch(app, host, port, theme, CSS)
    except BaseException:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        raise
    port = chosen
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    entries = viewer.entries()
    say = out.print if out is not None else print
    say(f"ganzoo view: {url}  ({len(entries)} entries under {', '.join(map(str, paths))}; Ctrl-C stops it)")
    if host not in LOCAL:
        (console.print if console is not None else print)(
            f"warning: listening on {host}: anyone who can reach this machine on port {port} sees these runs.")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        closing = threading.Thread(target=app.close, kwargs={"verbose": False}, daemon=True)
        closing.start()
        closing.join(CLOSE_S)                      # the server's own shutdown waits for open connections
    # Stopped: the process ends even if a library thread of the server lingers at the interpreter's exit (seen on
    # a loaded machine). Only the command reaches here: it serves until Ctrl-C or SIGTERM.
    watchdog = threading.Timer(CLOSE_S, os._exit, args=(0,))
    watchdog.daemon = True
    watchdog.start()
    return 0


def _launch(app, host: str, port: int | None, theme, css: str) -> int:
    """Start serving on `port`, or on the first free one from DEFAULT_PORT (another process may take a free port
    between the look and the launch: then the next one). The port it listens on."""
    for attempt in range(20):
        chosen = port or _free_port(host, DEFAULT_PORT + attempt)
        try:
            app.launch(server_name=host, server_port=chosen, prevent_thread_lock=True, quiet=True, theme=theme,
                       css=css, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False,
                       footer_links=[], show_error=False, inbrowser=False)
            return chosen
        except OSError as exc:
            if port:                                # the port the user asked for: say so
                raise GanzooError(f"Could not listen on {host}:{port}: {exc}") from None
    raise GanzooError(f"No free port from {DEFAULT_PORT} on {host}; give one with --port.")
