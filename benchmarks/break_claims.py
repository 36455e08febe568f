"""Break each claim on purpose and see which test fails: the suite's defences, shown rather than assumed.

Each break changes one piece of ganzoo (a function made to do nothing, an order left unshuffled, a pickle
loader added) in a temporary copy of this checkout, runs the tests named for it against that copy, and
records which of them failed. A break no test catches is a blind spot; a break that no longer applies
(its code changed) is reported so, and needs updating here.

    python benchmarks/break_claims.py                    # every break (about 15 minutes on 2 busy cores)
    python benchmarks/break_claims.py --only shuffle     # the breaks whose name contains a word
    python benchmarks/break_claims.py --list             # the breaks, not run

The copy is imported through a folder of links put first on PYTHONPATH (ganzoo -> copy/ganzoo,
ganzoo_plugins -> copy/plugins), so the environment's editable install keeps its place but is not used;
subprocesses the tests start inherit it. Before the breaks, the named tests run once on the unbroken copy:
they must pass there, or the table would mean nothing (--no-baseline skips that).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Break:
    name: str           # what is broken, as the table says it
    path: str           # the file changed, relative to the checkout
    old: str            # text that must occur exactly once in it ...
    new: str            # ... and what replaces it
    tests: list[str]    # pytest node ids run against the broken copy
    expect: str = "caught"   # or "not caught": a property no test here can check (the table says why)


def nothing(signature: str, first_line: str) -> tuple[str, str]:
    """A nested check function made to return at once (its body left in place, unreachable)."""
    indent = re.match(r"\s*", first_line).group(0)
    return f"{signature}\n{first_line}", f"{signature}\n{indent}return\n{first_line}"


def nothing_for(role: str, signature: str, first_line: str) -> tuple[str, str]:
    """A check shared by generators and discriminators made to return at once for one role only."""
    indent = re.match(r"\s*", first_line).group(0)
    return f"{signature}\n{first_line}", f"{signature}\n{indent}if role is {role}:\n{indent}    return\n{first_line}"


NETWORKS = "ganzoo/testing/networks.py"
NET_GRADIENTS = "        size, what = at_reference_size()\n        net = role.build(entry, size, 3, device).train()\n        x = "
NET_STEP = "            size, what = at_reference_size()\n            net = role.build(entry, size, 3, device)\n"
NET_ROUND_TRIP = ("        size, what = at_reference_size()\n        net = role.build(entry, size, 3, device).train()\n"
                  "        with torch.no_grad():")
KIT = "tests/test_conformance.py::test_each_check_fails_exactly_the_component_broken_for_it"
BROKEN_KIT = "tests/test_conformance.py::test_kit_fails_broken_components_and_says_what_to_fix"
PICKLE_TESTS = ["tests/test_untrusted.py::test_a_pickle_never_runs",
                "tests/test_untrusted.py::test_no_pickle_loader_anywhere_in_ganzoo"]
SHEET = "tests/test_analysis.py::test_sheet_shows_the_samples_of_its_seed"
SHUFFLE = "tests/test_data.py::test_training_shuffles_anew_every_epoch_and_resumes_the_same_order"
VIEW = "tests/test_view.py::"
BROWSER = "tests/test_view_browser.py::"

BREAKS = [
    Break("shuffle: every epoch in the same order", "ganzoo/train.py",
          "                    self.epoch_rng_state = self.data_rng.get_state()\n",
          "", [SHUFFLE, "tests/test_resume.py"]),
    Break("shuffle: no shuffling at all (images held on the device)", "ganzoo/data.py",
          "order = torch.randperm(len(self.images), device=self.device, generator=generator)\n",
          "order = torch.arange(len(self.images), device=self.device)\n", [SHUFFLE, "tests/test_resume.py"]),
    Break("shuffle: no shuffling at all (images streamed from host memory)", "ganzoo/data.py",
          "order = torch.randperm(len(self.images), device=self.device, generator=generator).cpu().numpy()",
          "order = torch.arange(len(self.images)).numpy()", [SHUFFLE]),
    Break("compare --budget ignored (one epoch per point)", "ganzoo/compare/comparison.py",
          "                yield UNLIMITED_EPOCHS, self.settings.budget * k / self.settings.points",
          "                yield k, 0.0",
          ["tests/test_compare.py::test_equal_time_budget_is_the_same_training_time_for_every_model",
           "tests/test_compare.py::test_equal_time_budget"]),
    Break("FID returns 0", "plugins/inception.py",
          '            return {"fid": frechet_distance_of_features(ours, reference.features)}',
          '            return {"fid": 0.0}', ["tests/test_metrics_cli.py::test_eval_in_a_fresh_process[fid]"]),
    Break("KID returns 0", "plugins/inception.py",
          '        return {"kid": mean, "kid_std": std}', '        return {"kid": 0.0, "kid_std": 0.0}',
          ["tests/test_metrics_cli.py::test_eval_in_a_fresh_process[kid]"]),
    Break("read_tensors falls back to an unrestricted pickle loader (torch's, weights_only off)", "ganzoo/checkpoint.py",
          "        kind = None\n        with contextlib.suppress(OSError):\n            kind = pickle_kind(path)\n",
          # the one pickle loader in the repository, on purpose: injected into a temporary copy only,
          # to show that test_untrusted catches it (the checkout itself never loads a pickle)
          "        try:  # 'other formats'\n            return torch.load(str(path), weights_only=False), {}\n"
          "        except Exception:\n            pass\n"
          "        kind = None\n        with contextlib.suppress(OSError):\n            kind = pickle_kind(path)\n",
          PICKLE_TESTS),
    # generators and discriminators share one set of checks (ganzoo/testing/networks.py): broken for one role
    Break("kit: generator gradients check does nothing", NETWORKS,
          *nothing_for("GENERATOR", "    def gradients():", NET_GRADIENTS), [KIT, BROKEN_KIT]),
    Break("kit: generator training steps do nothing", NETWORKS,
          *nothing_for("GENERATOR", "        def run():", NET_STEP), [KIT, BROKEN_KIT]),
    Break("kit: generator round trip does nothing", NETWORKS,
          *nothing_for("GENERATOR", "    def round_trip():", NET_ROUND_TRIP), [KIT, BROKEN_KIT]),
    Break("kit: discriminator gradients check does nothing", NETWORKS,
          *nothing_for("DISCRIMINATOR", "    def gradients():", NET_GRADIENTS), [KIT, BROKEN_KIT]),
    Break("kit: loss gradients check does nothing", "ganzoo/testing/losses.py",
          *nothing("    def gradients():", "        loss = make()\n        real, fake"), [KIT]),
    Break("kit: loss bf16 check does nothing", "ganzoo/testing/losses.py",
          *nothing("    def amp():", "        loss = make()\n"), [KIT]),
    Break("kit: loss determinism check does nothing", "ganzoo/testing/losses.py",
          *nothing("    def deterministic():", "        loss = make()\n"), [KIT]),
    Break("kit: model training steps do nothing", "ganzoo/testing/models.py",
          *nothing("        def run():", "            t = trainer(config(precision))\n"), [KIT]),
    Break("kit: model determinism check does nothing", "ganzoo/testing/models.py",
          *nothing("    def deterministic():", "        runs = []\n"), [KIT]),
    Break("kit: model checkpoint round trip does nothing", "ganzoo/testing/models.py",
          *nothing("    def round_trip():", '        with tempfile.TemporaryDirectory(prefix="ganzoo-check-") as tmp:\n'
                                          '            cfg = config("fp32"'), [KIT]),
    Break("ganzoo sheet saves blank images", "ganzoo/analysis/commands.py",
          "    images = generate(nets.G, latents(nets.config, args.seed, indices))\n",
          "    images = generate(nets.G, latents(nets.config, args.seed, indices)) * 0\n", [SHEET]),
    Break("ganzoo sheet ignores --seed", "ganzoo/analysis/commands.py",
          "latents(nets.config, args.seed, indices)", "latents(nets.config, 0, indices)", [SHEET]),
    Break("compare's 'D collapsed' never set", "ganzoo/compare/comparison.py",
          'if run.status == "ok" and d_collapsed(records):', 'if False and d_collapsed(records):',
          ["tests/test_compare.py::test_diverging_and_collapsing_models_are_recorded_not_fatal"]),
    Break("fsync removed from atomic writes", "ganzoo/checkpoint.py",
          "            os.fsync(f.fileno())", "            pass",
          ["tests/test_faults.py", "tests/test_checkpoint.py"], expect="not caught"),
    # the assertions that could not fail, now able to
    Break("divergence caught late (checked every 50 steps)", "ganzoo/guard.py",
          "check_every: int = 5,", "check_every: int = 50,",
          ["tests/test_divergence.py::test_nan_loss_stops_and_keeps_last_good_checkpoint"]),
    Break("evaluator reports its train accuracy as test accuracy", "plugins/mnist_evaluator.py",
          "    test_accuracy = accuracy(model, test_set.images, test_set.labels)",
          "    test_accuracy = accuracy(model, train_set.images, train_set.labels)",
          ["tests/test_evaluate.py::test_evaluator_training_is_reproducible_from_its_seed"]),
    Break("a resumed run logs a record at the step it resumes from", "ganzoo/train.py",
          "        self.step, self.epoch, self.step_in_epoch = step, epoch, step_in_epoch\n",
          "        self.step, self.epoch, self.step_in_epoch = step, epoch, step_in_epoch\n"
          "        self.log({'step': step, 'epoch': epoch, 'loss_d': 0.0, 'loss_g': 0.0, 'd_real': 0.5, "
          "'d_fake': 0.5, 'images_per_s': 0.0, 'time': 0.0})\n",
          ["tests/test_resume.py::test_stop_mid_epoch_then_resume_is_bit_identical"]),
    Break("a run's last epoch writes no checkpoint", "ganzoo/train.py",
          "                    grid = self.save_epoch_grid()\n                    self.save_checkpoint()\n",
          "                    grid = self.save_epoch_grid()\n"
          "                    if self.epoch < cfg.epochs:\n                        self.save_checkpoint()\n",
          ["tests/test_bad_input.py::test_no_command_line_produces_a_traceback"]),
    # ganzoo view
    Break("view: the walk's ends are not the two samples", "ganzoo/view/drawing.py",
          "torch.tensor([float(t)], dtype=torch.float64)", "torch.tensor([0.01 + 0.98 * float(t)], dtype=torch.float64)",
          [VIEW + "test_walk_ends_are_the_two_samples_and_the_path_is_the_analysis",
           BROWSER + "test_the_walk_ends_are_the_two_clicked_samples"]),
    Break("view: raw G is the averaged one", "ganzoo/view/catalog.py",
          "entry.loaders = {EMA: plain, RAW: lambda: raw_generator(files.checkpoint)}",
          "entry.loaders = {EMA: plain, RAW: plain}", [VIEW + "test_ema_and_raw_g_are_the_two_generators"]),
    Break("view: a damaged weights file is not refused", "ganzoo/view/catalog.py",
          "    if error:\n        raise GanzooError(error)\n", "",
          [VIEW + "test_a_bad_or_foreign_file_is_a_row_with_its_sentence"]),
    Break("view: loose weights files are not looked at", "ganzoo/view/catalog.py",
          "if child.is_dir() or child.suffix in WEIGHTS_SUFFIXES:", "if child.is_dir():",
          [VIEW + "test_a_bad_or_foreign_file_is_a_row_with_its_sentence",
           BROWSER + "test_a_corrupt_file_is_a_row_with_its_sentence"]),
    Break("view: the run lock is not read (a training run shows as stopped)", "ganzoo/view/catalog.py",
          'if "FLOCK" in fields and any(part == wanted for part in fields):', "if False:",
          [VIEW + "test_status_stopped_diverged_training"]),
    Break("view: a failing source of generators stops discovery", "ganzoo/view/catalog.py",
          "except Exception as exc:   # a source of generators", "except GanzooError as exc:   # a source of generators",
          [VIEW + "test_a_second_source_of_generators_plugs_in"]),
    Break("view: the download is laid out 8 to a row", "ganzoo/view/app.py",
          "nrow=max(1, int(math.ceil(math.sqrt(len(images)))))", "nrow=8",
          [VIEW + "test_the_download_is_the_png_ganzoo_sample_writes"]),
    Break("view: the class picker is ignored", "ganzoo/view/drawing.py",
          "seed=check_seed(seed), cls=class_of(config, cls))", "seed=check_seed(seed), cls=None)",
          [VIEW + "test_the_class_picker_draws_that_class"]),
    Break("view: the seed is ignored", "ganzoo/view/drawing.py",
          "return sample(G, config, check_count(n), seed=check_seed(seed)", "return sample(G, config, check_count(n), seed=0",
          [BROWSER + "test_the_seed_moves_the_grid_and_back_exactly"]),
    Break("view: generators kept after their weights are rewritten", "ganzoo/view/drawing.py",
          "key = (entry.key, name, entry.signature)", "key = (entry.key, name)",
          [VIEW + "test_new_weights_are_drawn_once_they_land"]),
    Break("view: a training run's curves are not looked at again", "ganzoo/view/app.py",
          "        timer.tick(training, [run, scrubber, training_shown], training_out, show_progress=\"hidden\")\n", "",
          [BROWSER + "test_a_training_run_shows_new_points_within_seconds"]),
    Break("view: matplotlib's font cache goes to the user's home", "ganzoo/view/command.py",
          '"MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", temporary)', '"MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", "")',
          [BROWSER + "test_nothing_is_written_outside_the_run_folders"]),
    Break("view: a script error on load", "ganzoo/view/app.py",
          'ROWS_JS = """\n', 'ROWS_JS = """\nnoSuchFunction();\n', [BROWSER + "test_the_page_loads_clean"]),
]


def copy_checkout(dest: Path) -> Path:
    """The checkout's tracked and new (not ignored) files, copied to dest/repo; links to it in dest/path."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    repo = dest / "repo"
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    links = dest / "path"
    links.mkdir()
    (links / "ganzoo").symlink_to(repo / "ganzoo")
    (links / "ganzoo_plugins").symlink_to(repo / "plugins")
    return repo


def run_tests(repo: Path, tests: list[str], timeout: float) -> tuple[str, list[str], float]:
    """('passed' | 'failed' | 'timed out' | 'error', failed node ids, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(repo.parent / "path"), PYTHONDONTWRITEBYTECODE="1",
               GANZOO_MNIST_DIR=os.environ.get("GANZOO_MNIST_DIR", str(REPO.parent / "shared" / "data" / "mnist")))
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=repo,
                                env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out", [], time.perf_counter() - start
    seconds = time.perf_counter() - start
    failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", result.stdout, re.M)
    if result.returncode == 0:
        return "passed", [], seconds
    if failed:
        return "failed", sorted(set(failed)), seconds
    return "error", [result.stdout[-500:] + result.stderr[-500:]], seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help="run the breaks whose name contains this text")
    parser.add_argument("--list", action="store_true", help="list the breaks and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unbroken copy")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per break (default 1200)")
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKS if not args.only or args.only.lower() in b.name.lower()]
    if args.list:
        for b in chosen:
            print(f"{b.name}  ({b.path})  ->  {', '.join(b.tests)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="ganzoo-breaks-") as tmp:
        repo = copy_checkout(Path(tmp))
        if not args.no_baseline:
            every = list(dict.fromkeys(t for b in chosen for t in b.tests))
            status, failed, seconds = run_tests(repo, every, args.timeout * 2)
            print(f"baseline (unbroken copy): {status} in {seconds:.0f} s {' '.join(failed)}", flush=True)
            if status != "passed":
                print("the named tests must pass on the unbroken copy first", file=sys.stderr)
                return 1
        rows = []
        for b in chosen:
            path = repo / b.path
            original = path.read_text()
            if original.count(b.old) != 1:
                rows.append((b, "does not apply", [], 0.0))
                print(f"{b.name}: the text to change occurs {original.count(b.old)} times in {b.path}; update "
                      f"this break", flush=True)
                continue
            path.write_text(original.replace(b.old, b.new))
            try:
                status, failed, seconds = run_tests(repo, b.tests, args.timeout)
            finally:
                path.write_text(original)
            rows.append((b, status, failed, seconds))
            print(f"{b.name}: {status} in {seconds:.0f} s {' '.join(failed)}", flush=True)
    print("\n| break | caught? | failing tests (of those run) | s |\n|---|---|---|---:|")
    surprises = 0
    for b, status, failed, seconds in rows:
        if status == "failed" or status == "timed out":
            caught = "yes" if status == "failed" else "yes (run hung: timed out)"
        elif status == "passed":
            caught = "**no**" if b.expect == "caught" else "no (expected: see the test's comment)"
        else:
            caught = f"? ({status})"
        surprises += (status in ("failed", "timed out")) != (b.expect == "caught")
        tests = "<br>".join(t.replace("tests/", "") for t in failed) if status == "failed" else \
            ", ".join(t.replace("tests/", "") for t in b.tests)
        print(f"| {b.name} | {caught} | {tests} | {seconds:.0f} |")
    return 1 if surprises else 0


if __name__ == "__main__":
    raise SystemExit(main())
