"""Faults of one rank in a 2-process run under torchrun on the CPU (gloo): a rank killed with SIGKILL, a rank
frozen with SIGSTOP, and a second Ctrl-C while the other rank is frozen. The survivor says what happened in one
sentence (which rank, where the last checkpoint is, how to resume) and exits 1; never an internal error, never a
hang.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import ENV, state_of

pytestmark = pytest.mark.slow       # every test here starts torchrun

TINY = ["basicgan", "--data", "fake", "--image-size", "16", "--batch-size", "64", "--g-width", "8",
        "--d-width", "8", "--z-dim", "16", "--samples", "16", "--device", "cpu", "--threads", "1",
        "--log-every", "4", "--precision", "fp32", "--epochs", "200", "--checkpoint-every", "3"]


def launch(out: Path, log: Path, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "ganzoo", "run", *TINY, "--out", str(out), *map(str, extra)]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                            start_new_session=True)


def worker_of_rank(launcher: subprocess.Popen, rank: int) -> int:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher.pid and f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    raise AssertionError(f"no worker of rank {rank} under {launcher.pid}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def started(proc: subprocess.Popen, out: Path, log: Path) -> None:
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.safetensors").exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.01)


def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"torchrun did not end within {timeout} s") from None


def the_error(log: str) -> str:
    errors = [line for line in log.splitlines() if re.match(r"(\x1b\[[0-9;]*m)*error", line)]
    assert len(errors) == 1, log[-4000:]
    return re.sub(r"\x1b\[[0-9;]*m", "", errors[0])


def assert_resumable_advice(error: str, out: Path) -> None:
    step = state_of(out / "checkpoint.safetensors")["step"]
    assert f"The last good weights are in {out}/checkpoint.safetensors (step {step};" in error
    assert error.endswith(f"Continue with: ganzoo run --resume {out}")


def test_a_killed_rank_is_named_and_the_survivor_exits_1_with_its_checkpoint_and_resume(tmp_path):
    out, log = tmp_path / "run", tmp_path / "log"
    proc = launch(out, log)
    started(proc, out, log)
    survivor = worker_of_rank(proc, 0)
    os.kill(worker_of_rank(proc, 1), signal.SIGKILL)
    finish(proc)
    text = log.read_text()
    error = the_error(text)
    assert error.startswith("error: The run stopped: the process of rank 1 ended or became unreachable, at step ")
    assert_resumable_advice(error, out)
    assert "internal error" not in text
    assert re.search(r"rank\s*:\s*0.*\n.*exitcode\s*:\s*1\b", text) or "exitcode  : 1" in text, text[-3000:]
    assert not alive(survivor)


def test_a_frozen_rank_is_named_within_the_collective_timeout(tmp_path):
    """SIGSTOP rank 1: rank 0 waits --collective-timeout (3 s) for it, then stops naming it, exit 1."""
    out, log = tmp_path / "run", tmp_path / "log"
    proc = launch(out, log, "--collective-timeout", "3s")
    started(proc, out, log)
    frozen = worker_of_rank(proc, 1)
    os.kill(frozen, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        deadline = frozen_at + 60
        while "error" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - frozen_at
        print(f"freeze to error: {took:.1f} s")
        text = log.read_text()
        error = the_error(text)
        assert error.startswith("error: The run stopped: rank 1 stopped responding 3s ago (frozen, or gone with "
                                "its machine; --collective-timeout sets how long to wait), at step "), error
        assert_resumable_advice(error, out)
        assert 3 - 2 * 0.5 <= took < 3 + 10, took      # silence counts from the last beat heard (every 0.5 s)
    finally:
        os.kill(frozen, signal.SIGKILL)
        finish(proc)


def test_a_second_ctrl_c_ends_a_rank_at_once_while_its_peer_is_frozen(tmp_path):
    """Rank 0 blocked in a collective on a frozen rank 1 (a long --collective-timeout): the first Ctrl-C cannot
    be acted on; a second one, past the repeat grace, ends the process within a few seconds, exit 130."""
    out, log = tmp_path / "run", tmp_path / "log"
    proc = launch(out, log, "--collective-timeout", "10m")
    started(proc, out, log)
    rank0, frozen = worker_of_rank(proc, 0), worker_of_rank(proc, 1)
    os.kill(frozen, signal.SIGSTOP)
    try:
        time.sleep(2)                         # rank 0 is now waiting on rank 1
        os.kill(rank0, signal.SIGINT)
        time.sleep(3)                         # past the repeat grace: the next one is a second Ctrl-C
        assert alive(rank0)
        second = time.monotonic()
        os.kill(rank0, signal.SIGINT)
        while alive(rank0) and time.monotonic() - second < 30:
            time.sleep(0.02)
        took = time.monotonic() - second
        print(f"second Ctrl-C to exit: {took:.2f} s")
        assert not alive(rank0)
        assert took < 5, took
        error = the_error(log.read_text())
        assert error.startswith("error: The run stopped: a second Ctrl-C ended it at once, at step "), error
        assert_resumable_advice(error, out)
    finally:
        os.kill(frozen, signal.SIGKILL)
        finish(proc)
