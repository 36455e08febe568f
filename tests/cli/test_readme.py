"""Every command in README.md's code blocks runs, each in a fresh process: the README cannot drift from the tool.

The commands are scaled down to seconds by this substitution table (the README shows what a user
types; the test types the same with smaller numbers). Applied to each command line in order:

| README says                              | the test runs                                               |
|------------------------------------------|-------------------------------------------------------------|
| `../shared/data/mnist`                   | the real MNIST folder the tests use (see conftest.py)       |
| `--data mnist` with no `--data-dir`      | adds `--data-dir` that folder (no download: offline)        |
| `path/to/any/image/folder`               | a folder of 160 small PNG files                             |
| `~/data`                                 | a folder holding small CIFAR-10 (150 training images) and   |
|                                          | CelebA (8 faces) copies in their real layouts (datafiles.py)|
| `> FILE`                                 | the command's output written to FILE, as the shell would    |
| `--epochs N` on a new run                | `--budget {N * EPOCH}s`: an epoch becomes EPOCH seconds of  |
|                                          | training                                                    |
| `--resume RUN --epochs N`                | `--resume RUN --budget {t + N * EPOCH}s`, t the training    |
|                                          | time RUN has had (a budget is the run's total)              |
| `--budget <any>`                         | `--budget {BUDGET}s`                                        |
| `ganzoo run MODEL` with neither          | adds `--budget {BUDGET}s` (instead of the 5 default epochs) |
| `ganzoo run MODEL`, `ganzoo compare`     | adds WIDTHS (small networks)                                |
| `ganzoo run --config FILE`               | adds `--budget {BUDGET}s` (unless it has one), WIDTHS and   |
|                                          | `--data-dir` the MNIST folder (README's files train MNIST)  |
| `--seeds 3`                              | `--seeds 2` (still a mean ± std)                            |
| `ganzoo compare`                         | adds `-n 500 --curve-n 200 --points 1`                      |
| `ganzoo eval`                            | adds `-n 500`                                               |
| `--eval-every K`                         | adds `--eval-n 200`                                         |
| `ganzoo probe`                           | adds `--test-size 1000`                                     |
| `--per-class 100`; `class:N`, `--class N`| `--per-class 20` (labelled images a probe learns from)      |
| `check-plugin NAME`                      | `check-plugin sndcgan` (the example plugin)                 |
| `n=10000` in Python                      | `n=500`                                                     |
| `ganzoo view`                            | the same, stopped with Ctrl-C once it prints its address    |
|                                          | (a server runs until stopped); exit 0 expected              |

A G trained for seconds draws blobs, not yet 7s and 1s, so the two commands that pick samples by
class (`class:7`, `--class 7`) may end, instead of with a picture, with the one-line error saying
how many samples the labeller put in that class (exit 1): the test accepts that sentence from those
two commands, having checked that everything before it ran (parsing, loading the run, training the
labeller, labelling samples). tests/test_analysis.py runs both to their pictures with a labeller
that always finds its class.

Lines that install (pip) or run the tests are .ci/run's business, not this test's; every other line
of a block that starts with `ganzoo` or `python`, and every ```python block, runs here. The run
`runs/dcgan` that the README's second command makes is the one every later command reads: one short
training run shared by resume, sample, eval, the Python example and the analyses. Those commands
run in README order; the others (which make or read nothing of theirs) run beside them, two
processes at a time.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from ganzoo.runfiles import read_metrics

from helpers import MNIST_DIR, REPO
from helpers import write_celeba, write_cifar

EPOCH = 1              # seconds of training per README epoch
BUDGET = 2             # seconds for any README --budget, and for runs of the default 5 epochs
# wide enough for README's `dropout --maps 3,17,40 --layer -2` (G's layer -2 has 2 * g_width maps)
WIDTHS = ["--g-width", "24", "--d-width", "16"]

# what `arithmetic class:N` and `dropout --class N` say when the labeller finds too few samples of class N
CLASS_NOT_DRAWN = re.compile(r"^error: (Only \d+ of \d+ samples were labelled class \d+|The labeller put \d+ of \d+ "
                             r"samples in class \d+) \(", re.M)
README = (REPO / "README.md").read_text()
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_commands() -> list[tuple[str, str]]:
    """('shell' or 'python', text) for every command of README.md's code blocks, in order."""
    commands = []
    for lang, body in BLOCK.findall(README):
        if lang == "python":
            commands.append(("python", body))
        elif lang in ("", "sh", "bash", "console"):
            for line in body.splitlines():
                if re.match(r"(ganzoo|python3?) ", line) and not re.search(r"-m (pip|pytest)\b", line):
                    commands.append(("shell", shlex.join(shlex.split(line, comments=True))))   # no "# ..."
    return commands


def scaled(argv: list[str], images: Path, work: Path = Path("."), data: Path = Path("data")) -> list[str]:
    """The substitution table above, applied to one shell command line (run in the folder `work`)."""
    text = shlex.join(argv).replace("../shared/data/mnist", str(MNIST_DIR))
    text = text.replace("path/to/any/image/folder", str(images)).replace("~/data", str(data))
    if "--resume" in argv and "--epochs" in argv:
        run = work / argv[argv.index("--resume") + 1]
        t = read_metrics(run / "metrics.jsonl")[-1].get("train_time", 0.0) if (run / "metrics.jsonl").is_file() else 0
        text = re.sub(r"--epochs (\d+)", lambda m: f"--budget {t + int(m.group(1)) * EPOCH:.1f}s", text)
    text = re.sub(r"--epochs (\d+)", lambda m: f"--budget {int(m.group(1)) * EPOCH}s", text)
    text = re.sub(r"--budget \S+", f"--budget {BUDGET}s", text) if "--epochs" not in argv else text
    text = text.replace("--seeds 3", "--seeds 2")
    text = re.sub(r"check-plugin NAME\b", "check-plugin sndcgan", text)
    argv = shlex.split(text)
    if argv[:2] == ["ganzoo", "run"] and len(argv) > 2 and not argv[2].startswith("-"):   # a new run
        if "--budget" not in argv:
            argv += ["--budget", f"{BUDGET}s"]
        argv += WIDTHS
    elif argv[:2] == ["ganzoo", "run"] and "--config" in argv and "--resume" not in argv:   # a new run from a file
        if "--budget" not in argv:
            argv += ["--budget", f"{BUDGET}s"]
        argv += [*WIDTHS, *(["--data-dir", str(MNIST_DIR)] if "--data-dir" not in argv else [])]
    if argv[:2] == ["ganzoo", "compare"]:
        argv += [*WIDTHS, "-n", "500", "--curve-n", "200", "--points", "1"]
    if "--data" in argv and argv[argv.index("--data") + 1] == "mnist" and "--data-dir" not in argv:
        argv += ["--data-dir", str(MNIST_DIR)]
    if argv[:2] == ["ganzoo", "eval"]:
        argv += ["-n", "500"]
    if "--eval-every" in argv:
        argv += ["--eval-n", "200"]
    if argv[:2] == ["ganzoo", "probe"]:
        argv += ["--test-size", "1000"]
    if "--per-class" in argv:
        argv[argv.index("--per-class") + 1] = "20"
    elif re.search(r"class[: ]\d", text):
        argv += ["--per-class", "20"]
    if argv[0] == "ganzoo":
        return [sys.executable, "-m", "ganzoo", *argv[1:]]
    return [sys.executable, *argv[1:]]


def test_readme_has_the_commands_it_should():
    shell = [text for kind, text in readme_commands() if kind == "shell"]
    assert len(shell) >= 20, shell
    for command in ("ganzoo run", "ganzoo compare", "ganzoo sample", "ganzoo eval", "ganzoo sheet",
                    "ganzoo probe", "ganzoo dropout"):
        assert any(text.startswith(command) for text in shell), command


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, mnist_dir):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(160):                                                      # more than one batch of 128
        Image.new("RGB", (24 + i % 40, 24), (i, 90, 200 - i)).save(images / f"{i}.png")
    data = tmp_path / "data"                                                  # README's ~/data
    write_cifar(data, "cifar10", per_batch=30)
    write_celeba(data, [0] * 8)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}      # `python benchmarks/...` imports like the README's reader
    shared = [c for c in readme_commands() if re.search(r"\bruns/dcgan\b", c[1])]
    others = [c for c in readme_commands() if c not in shared]

    def run_lane(commands):
        failures, timings = [], []
        for kind, text in commands:
            if kind == "python":
                code = re.sub(r"\bn=10000\b", "n=500", text.replace("../shared/data/mnist", str(MNIST_DIR)))
                argv = [sys.executable, "-c", code]
            else:
                words = shlex.split(text)
                words, into = (words[:words.index(">")], words[words.index(">") + 1]) if ">" in words else (words, None)
                argv = scaled(words, images, work, data)
            start = time.perf_counter()
            run = serve_briefly if argv[3:4] == ["view"] else subprocess.run
            done = run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
            if kind == "shell" and into and done.returncode == 0:
                (work / into).write_text(done.stdout)                      # the shell's `> FILE`
            timings.append((time.perf_counter() - start, text if kind == "shell" else "(python example)"))
            if done.returncode == 1 and re.search(r"class[: ]\d", text) and CLASS_NOT_DRAWN.search(done.stderr):
                continue                                                   # see the docstring: an untrained G
            if done.returncode != 0:
                last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
                failures.append(f"{text.strip()}\n  ran: {shlex.join(argv[1:])}\n  exit {done.returncode}: "
                                + "\n  ".join(last))
        return failures, timings

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ThreadPoolExecutor(2) as pool:
        lanes = list(pool.map(run_lane, [shared, others]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failures = [f for lane, _ in lanes for f in lane]
    timings = sorted((t for _, lane in lanes for t in lane), reverse=True)
    print(f"\n{len(timings)} README commands: {sum(s for s, _ in timings):.0f}s of process wall time, "
          f"{after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime:.0f}s of CPU; slowest: "
          + "; ".join(f"{s:.0f}s {t[:50]}" for s, t in timings[:4]))
    assert not failures, "README commands that fail:\n\n" + "\n\n".join(failures)


def serve_briefly(argv, *, cwd, env, timeout, **_) -> subprocess.CompletedProcess:
    """`ganzoo view`: started, stopped with Ctrl-C once it has printed its address (the server is up)."""
    import signal

    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as view:
        first = view.stdout.readline()                     # the address line, or "" when it exits first
        if "ganzoo view: http://" in first:
            view.send_signal(signal.SIGINT)
        try:
            out, err = view.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            view.kill()
            out, err = view.communicate()
        code = view.returncode if "ganzoo view: http://" in first else view.returncode or 1
        return subprocess.CompletedProcess(argv, code, first + out, err)


@pytest.mark.parametrize("line,expected", [
    ("ganzoo run dcgan --data mnist", ["run", "dcgan", "--data", "mnist", "--budget", f"{BUDGET}s", *WIDTHS,
                                       "--data-dir", str(MNIST_DIR)]),
    ("ganzoo run --resume runs/dcgan --epochs 4", ["run", "--resume", "runs/dcgan", "--budget", f"{4 * EPOCH:.1f}s"]),
    ("ganzoo check-plugin NAME", ["check-plugin", "sndcgan"]),
    ("ganzoo run --config run.yaml --epochs 2", ["run", "--config", "run.yaml", "--budget", f"{2 * EPOCH}s", *WIDTHS,
                                                 "--data-dir", str(MNIST_DIR)]),
    ("ganzoo data celeba --data-dir ~/data", ["data", "celeba", "--data-dir", "data"]),
])
def test_the_substitutions(line, expected):
    assert scaled(shlex.split(line), Path("images"))[3:] == expected      # after: python -m ganzoo
