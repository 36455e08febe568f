"""Data-parallel runs under torchrun on the CPU (gloo): 2 processes with half the global batch each train as one
process with the whole batch, BatchNorm per process or over the global batch (--sync-bn), a 2-process run
stopped by SIGTERM resumes on 1 and on 2 processes, and two "machines" on 127.0.0.1 train together.

Each torchrun costs a few seconds of process start-up, so each is shared by the asserts that need it
(module-scoped fixtures); runs are tiny (width 8, 16x16 images, fp32, one thread per process).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main
from ganzoo.data import load_dataset
from ganzoo.run import make_config, train
from ganzoo.train import Trainer, read_metrics

from helpers import ENV, state_of

pytestmark = pytest.mark.slow       # every test here starts torchrun

# 1024 fake images, global batch 64: 16 steps per epoch. No BatchNorm (an MLP G and the WGAN-GP critic as D), and
# no per-sample randomness besides z: what two processes compute is then one process's, to float rounding.
# R1 every 2nd step and 2 D steps per G step: the double backward, the lazy phase and G-less steps, all averaged.
PLAIN = dict(data="fake", image_size=16, batch_size=64, g_width=8, d_width=8, z_dim=16, samples=16, device="cpu",
             threads=1, log_every=4, precision="fp32", lr=0.002)
NO_BN = dict(PLAIN, discriminator="dcgan-critic", regularizers="r1:1@2", n_critic=2)
STEPS_PER_EPOCH = 16
TOLERANCE = 2e-5


def flags(model: str, settings: dict) -> list[str]:
    return [model, *(a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v)))]


def torchrun(*args, nproc=2, rdzv=("--standalone",), background=False, log=None, timeout=240):
    """`torchrun --nproc-per-node N -m ganzoo run ...` (as `python -m torch.distributed.run`)."""
    command = [sys.executable, "-m", "torch.distributed.run", *rdzv, "--nproc-per-node", str(nproc),
               "-m", "ganzoo", "run", *map(str, args)]
    if background:
        return subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                                start_new_session=True)     # its own process group: see finish()
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)


def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
    """Wait for a background torchrun; one that hangs (ranks that disagree) is killed with its workers."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"torchrun did not end within {timeout} s") from None


def plain_run(out, model: str, settings: dict, epochs: int = 1):
    """The same run in one process with the whole batch (in this process: no start-up to pay)."""
    threads = torch.get_num_threads()
    try:
        config = make_config(model, {**settings, "epochs": epochs})
        config.out = str(out)
        train(config)
    finally:
        torch.set_num_threads(threads)
    return out


def trained(folder) -> dict[str, torch.Tensor]:
    """What a checkpoint holds that training computes: weights, buffers, optimiser moments."""
    tensors, _ = read_tensors(folder / "checkpoint.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith(("G.", "D.", "opt_g.", "opt_d."))}


def largest_difference(a: dict, b: dict) -> tuple[float, str]:
    assert a.keys() == b.keys()
    return max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a if a[k].is_floating_point())


def initial(model: str, settings: dict, out) -> dict[str, torch.Tensor]:
    config = make_config(model, dict(settings))
    config.out = str(out)
    trainer = Trainer(config, load_dataset("fake", root=None, split="train", image_size=16, channels=1))
    return {f"G.{k}": v.clone() for k, v in trainer.G.state_dict().items()} | \
           {f"D.{k}": v.clone() for k, v in trainer.D.state_dict().items()}


def assert_ok(done):
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def plain_no_bn(runs):
    return plain_run(runs / "plain", "basicgan", NO_BN)


@pytest.fixture(scope="module")
def batchnorm_runs(runs):
    dcgan = dict(PLAIN)
    plain = plain_run(runs / "bn-plain", "dcgan", dcgan)
    per_rank = torchrun(*flags("dcgan", dcgan), "--epochs", 1, "--checkpoint-every", 8, "--out", runs / "bn-ddp")
    assert_ok(per_rank)
    synced = torchrun(*flags("dcgan", dcgan), "--epochs", 1, "--sync-bn", "--out", runs / "bn-sync")
    assert_ok(synced)
    return plain, runs / "bn-ddp", runs / "bn-sync"


def test_batchnorm_per_rank_trains_and_sync_bn_matches_one_process(batchnorm_runs):
    plain, per_rank, synced = batchnorm_runs
    # per rank: trains to the end; one checkpoint, one generator file, one grid, one log, nothing half-written
    assert state_of(per_rank / "checkpoint.safetensors")["step"] == STEPS_PER_EPOCH
    assert sorted(p.name for p in per_rank.iterdir() if p.name != ".lock") == ["checkpoint.safetensors", "config.json", "dcgan.safetensors",
                                                          "metrics.jsonl", "samples"]
    assert sorted(p.name for p in (per_rank / "samples").iterdir()) == ["epoch_001.png"]
    assert [r["step"] for r in read_metrics(per_rank / "metrics.jsonl")] == [4, 8, 12, 16]
    # BatchNorm over each process's 32 images is not BatchNorm over 64: the weights part ...
    assert largest_difference(trained(per_rank), trained(plain))[0] > 100 * TOLERANCE
    # ... and --sync-bn's statistics of the global batch give one process's weights and running statistics
    difference, where = largest_difference(trained(synced), trained(plain))
    assert difference < TOLERANCE, f"{where} differs by {difference}"
    assert json.loads((synced / "config.json").read_text())["sync_bn"] is True


def test_a_conditional_model_trains_on_each_ranks_labels_as_one_process(runs):
    """cdcgan: each process takes the labels of its own slice of the batch (for D's real images and G's classes);
    a label slice that did not follow the image slice would train another model than one process does."""
    settings = dict(PLAIN, lr=2e-4)      # at 2e-3 Adam grows float rounding in this G past the tolerance
    plain = plain_run(runs / "cond-plain", "cdcgan", settings)
    assert_ok(torchrun(*flags("cdcgan", settings), "--epochs", 1, "--sync-bn", "--out", runs / "cond-sync"))
    difference, where = largest_difference(trained(runs / "cond-sync"), trained(plain))
    assert difference < TOLERANCE, f"{where} differs by {difference}"


# -- stopped, then resumed on another number of processes ----------------------------------------------------

KILL_EPOCHS = 2                                                      # 32 steps
SLOW = dict(NO_BN, lr=2e-4)   # float rounding differences grow slowly enough over 32 steps


def worker_of_rank(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of torchrun's worker process of that rank (read from its environment)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher.pid and f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    raise AssertionError(f"no worker of rank {rank} under {launcher.pid}")


@pytest.fixture(scope="module")
def stopped(runs):
    """A 2-process run of which one process, rank 1, gets SIGTERM once the first checkpoint is written (torchrun
    would pass a SIGTERM to both; one alone is the harder case: rank 0 must learn of it)."""
    out, log = runs / "stopped", runs / "stopped.log"
    proc = torchrun(*flags("basicgan", SLOW), "--epochs", KILL_EPOCHS, "--checkpoint-every", 3, "--out", out,
                    background=True, log=log)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.safetensors").exists():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(worker_of_rank(proc, 1), signal.SIGTERM)
    finish(proc)
    return out, log.read_text()


def test_a_stopped_two_rank_run_resumes_on_one_rank_and_on_two(runs, stopped):
    out, log = stopped
    # both processes stopped at the same step, after a checkpoint of it; rank 0 alone said so
    said = [line for line in log.splitlines() if "Interrupted by SIGTERM at step" in line]
    assert len(said) == 1, log[-3000:]
    step = state_of(out / "checkpoint.safetensors")["step"]
    assert f"at step {step};" in said[0]
    assert 0 < step < KILL_EPOCHS * STEPS_PER_EPOCH

    one, two = runs / "resumed-on-1", runs / "resumed-on-2"
    shutil.copytree(out, one)
    shutil.copytree(out, two)
    threads = torch.get_num_threads()
    try:
        assert main(["run", "--resume", str(one)]) == 0                     # one process, the whole batch
    finally:
        torch.set_num_threads(threads)
    assert_ok(torchrun("--resume", two))                                    # two processes again
    for folder in (one, two):
        assert state_of(folder / "checkpoint.safetensors")["step"] == KILL_EPOCHS * STEPS_PER_EPOCH
        steps = [r["step"] for r in read_metrics(folder / "metrics.jsonl") if "loss_d" in r]
        assert steps == sorted(set(steps)) and steps[-1] == KILL_EPOCHS * STEPS_PER_EPOCH
    whole = plain_run(runs / "whole", "basicgan", SLOW, epochs=KILL_EPOCHS)  # never stopped, one process
    for folder in (one, two):
        difference, where = largest_difference(trained(folder), trained(whole))
        assert difference < TOLERANCE, f"{folder.name}: {where} differs by {difference}"


def test_a_write_that_fails_on_rank_0_stops_every_rank_keeping_the_last_checkpoint(runs):
    """Rank 0 cannot write the epoch's grid (samples/ is a file): both processes stop at that step with one
    error, and the checkpoint of step 15 stays as it was."""
    out = runs / "failed-write"
    out.mkdir()
    (out / "samples").write_text("not a folder")
    done = torchrun(*flags("basicgan", NO_BN), "--epochs", 2, "--checkpoint-every", 5, "--out", out, timeout=120)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert errors[0].startswith(f"error: Could not write {out}/samples/epoch_001.png (Not a directory); training "
                                f"stopped at step 16. The last good weights are in {out}/checkpoint.safetensors "
                                f"(step 15;")
    assert "rank 1" not in done.stderr
    assert state_of(out / "checkpoint.safetensors")["step"] == 15


# -- two machines, two ranks with half the batch each: one process with all of it -------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_with_half_the_batch_each_train_as_one_process_with_all_of_it(runs, plain_no_bn):
    """Two torchrun invocations (one process each), as on two machines, meeting at one c10d endpoint: the
    weights after 16 steps are one process's with the global batch, to float rounding."""
    out = runs / "two-nodes"
    rdzv = ("--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
            "--rdzv-id", "ganzoo-test")
    nodes = [torchrun(*flags("basicgan", NO_BN), "--epochs", 1, "--out", out, nproc=1, rdzv=rdzv, background=True,
                      log=runs / f"node{n}.log") for n in (0, 1)]
    for node in nodes:
        assert finish(node, timeout=240) == 0, [(runs / f"node{n}.log").read_text()[-2000:] for n in (0, 1)]
    ours, theirs = trained(out), trained(plain_no_bn)
    moved, _ = largest_difference({k: v for k, v in theirs.items() if k[:2] in ("G.", "D.")},
                                  initial("basicgan", NO_BN, runs / "init"))
    assert moved > 1000 * TOLERANCE                         # 16 steps moved the weights well beyond the tolerance
    difference, where = largest_difference(ours, theirs)
    assert difference < TOLERANCE, f"{where} differs by {difference}"
    # one log, rank 0's, with the global batch's statistics: each step once, the same numbers
    ours_log, theirs_log = read_metrics(out / "metrics.jsonl"), read_metrics(plain_no_bn / "metrics.jsonl")
    assert [r["step"] for r in ours_log] == [4, 8, 12, 16]
    for a, b in zip(ours_log, theirs_log):
        for name in ("loss_d", "loss_g", "d_real", "d_fake", "r1"):
            assert a[name] == pytest.approx(b[name], rel=1e-4, abs=1e-6), name
    # rank 0 alone prints: one description, one "done"
    logs = "".join((runs / f"node{n}.log").read_text() for n in (0, 1))
    assert logs.count("done: generator weights") == 1
    assert logs.count("2 processes x 32 images (gloo)") == 1


# -- refused with a sentence -------------------------------------------------------------------------------

def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(tmp_path, monkeypatch, capsys):
    """Checked before any process group forms, so it needs no second process: the env torchrun sets is enough."""
    for name, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="3", MASTER_ADDR="127.0.0.1",
                            MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(name, value)
    code = main(["run", *flags("basicgan", NO_BN), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == ("error: --batch-size 64 is the global batch and does not split evenly over 3 processes; "
                           "give a multiple of 3.")
    monkeypatch.setenv("RANK", "2")                                         # the other ranks stop without a word
    assert main(["run", *flags("basicgan", NO_BN), "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err == ""
