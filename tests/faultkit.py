"""Shared by the fault tests: running the real CLI (in this process or a fresh one) and installing a
test plugin through the same loading path the built-in plugins take."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import torch

from ganzoo import hookimpl, plugins
from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main

# Tiny runs: fake data (1024 images, 32 steps per epoch at batch 32), narrow networks.
TINY = ["--data", "fake", "--batch-size", "32", "--g-width", "8", "--d-width", "8", "--z-dim", "16",
        "--samples", "16", "--device", "cpu"]
# One thread: the same result in every process, and no thread contention on a busy machine.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="200", PYTHONUNBUFFERED="1")
ENV.pop("GANZOO_DEBUG", None)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str) -> str:
    """A failure: non-zero exit, exactly one line on stderr, no traceback, no internal error."""
    assert code != 0
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def ganzoo(*args, cwd=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    """The real `ganzoo` command in a fresh process."""
    return subprocess.run([sys.executable, "-m", "ganzoo", *map(str, args)], env=ENV, capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, **kwargs)


def python(code: str, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def state_of(path: Path) -> dict:
    """The training counters a checkpoint holds."""
    import json

    _, meta = read_tensors(path)
    return json.loads(meta["ganzoo.state"])


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, _ = read_tensors(a)
    tb, _ = read_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), f"{k} differs between {a} and {b}"


def install_plugin(monkeypatch, request, name: str, **hooks) -> None:
    """Load a plugin module made of `hooks` (hook name -> function) exactly as a built-in one is loaded."""
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", plugins.BUILTIN_PLUGINS + (name,))
    plugins.registries.cache_clear()
    request.addfinalizer(plugins.registries.cache_clear)  # runs before monkeypatch restores the built-ins
