from pathlib import Path

import pytest
import torch

from helpers import MNIST_DIR


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and a fixed thread count, so results do not depend on the machine."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("GANZOO_STRICT_PLUGINS", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def mnist_dir() -> Path:
    assert (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), (
        f"real MNIST is expected at {MNIST_DIR} (set GANZOO_MNIST_DIR to its folder)")
    return MNIST_DIR


@pytest.fixture
def one_thread():
    """In-process runs on one thread: deterministic, and quick on a machine shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_second_steps(monkeypatch):
    """A simulated clock (time.perf_counter) on which each training step takes one second and nothing else
    takes any time: a --budget then ends on a known step whatever the machine's speed."""
    import time

    from ganzoo.training.step import Step

    clock = {"now": 0.0}
    real_step = Step.__call__

    def one_second_step(self, real, labels=None):
        clock["now"] += 1.0
        return real_step(self, real, labels)

    monkeypatch.setattr(Step, "__call__", one_second_step)
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    return clock


# -- GPU tests: `python -m pytest -m gpu` on a machine with CUDA; elsewhere counted and said, not hidden -----

GPU_NOT_RUN = pytest.StashKey[int]()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: exercises a CUDA path; runs only where torch sees a CUDA GPU "
                                       "(`python -m pytest -m gpu`)")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if gpu:
        items[:] = [item for item in items if not item.get_closest_marker("gpu")]
        config.hook.pytest_deselected(items=gpu)
        config.stash[GPU_NOT_RUN] = len(gpu)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = config.stash.get(GPU_NOT_RUN, 0)
    if skipped:
        terminalreporter.write_line(
            f"GPU: {skipped} test(s) marked gpu were NOT run: torch sees no CUDA GPU on this machine; they run "
            f"with `python -m pytest -m gpu` on one.", yellow=True, bold=True)
