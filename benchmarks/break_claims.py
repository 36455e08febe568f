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
FIDELITY, MEMORISATION, PROTOCOL = "tests/test_fidelity.py", "tests/test_memorisation.py", "tests/test_protocol.py"

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
    # evaluation you can compare across tools (the protocol, the resizes, the cross-checked statistics)
    Break("eval: the tf resize samples at half-pixel centres (TF2's, not TF1's)", "plugins/inception.py",
          "    position = torch.arange(size, dtype=torch.float32) * torch.tensor(length / size, dtype=torch.float32)\n",
          "    position = ((torch.arange(size, dtype=torch.float32) + 0.5) * (length / size) - 0.5).clamp_min(0)\n",
          [FIDELITY + "::test_tf_resize_is_torch_fidelitys_bit_for_bit"]),
    Break("eval: the clean resize rounds to uint8 after resizing", "plugins/inception.py",
          "            out[i, c] = torch.from_numpy(np.asarray(channel).clip(0, 255))\n",
          "            out[i, c] = torch.from_numpy(np.asarray(channel).clip(0, 255).round())\n",
          [FIDELITY + "::test_clean_and_torch_resizes_are_clean_fids"]),
    Break("eval: KID subsets drawn by another generator than torch-fidelity's", "ganzoo/evaluate.py",
          "    rng = np.random.RandomState(seed)\n", "    rng = np.random.default_rng(seed)\n",
          [FIDELITY + "::test_kid_draws_torch_fidelitys_subsets"]),
    Break("eval: Fréchet distance of few features drops the cross term's normalisation", "ganzoo/evaluate.py",
          "    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt((len(x) - 1) * (len(y) - 1))\n",
          "    cross = np.linalg.svd(a @ b.T, compute_uv=False).sum() / math.sqrt(len(x) * len(y))\n",
          [FIDELITY + "::test_frechet_distance_agrees_with_torch_fidelitys_statistics"]),
    Break("eval: k-NN radii count the point itself as its first neighbour", "ganzoo/neighbours.py",
          "        radii[rows] = np.partition(d, k, axis=1)[:, k]", "        radii[rows] = np.partition(d, k - 1, axis=1)[:, k - 1]",
          [MEMORISATION + "::test_mnist_prdc_is_the_prdc_package_on_the_evaluators_features"]),
    Break("eval: precision counts a sample on a ball's edge as inside", "ganzoo/neighbours.py",
          "        inside = d < real_radii[rows, None]\n", "        inside = d <= real_radii[rows, None]\n",
          [MEMORISATION + "::test_mnist_prdc_is_the_prdc_package_on_the_evaluators_features",
           MEMORISATION + "::test_nearest_and_prdc_on_hand_made_points"]),
    Break("eval: memorisation flags samples below the held-out median, not the minimum", "ganzoo/neighbours.py",
          "        return float(self.heldout_distances.min())\n",
          "        return float(np.median(self.heldout_distances))\n",
          [MEMORISATION + "::test_held_out_images_outside_the_reference_pool_are_not_flagged",
           MEMORISATION + "::test_training_images_are_flagged_and_held_out_images_are_not"]),
    Break("eval: compare ranks scores of different real images in one column", "ganzoo/protocol.py",
          'NOT_COMPARED = frozenset({"numbers", "samples", "generator_sha256", "seed", "ganzoo"})',
          'NOT_COMPARED = frozenset({"numbers", "samples", "generator_sha256", "seed", "ganzoo", "real", "real_sha256"})',
          ["tests/test_compare.py::test_scores_of_different_protocols_are_refused_in_one_column"]),
    Break("eval: the protocol forgets the real images' pixel digest", "ganzoo/evaluate.py",
          "                      real_split=split, n_real=len(reference.features), real_sha256=reference.images_sha256)",
          "                      real_split=split, n_real=len(reference.features))",
          [PROTOCOL + "::test_evaluate_records_every_setting_that_decides_a_number"]),
    Break("eval: --eval-every logs scores without their protocol", "ganzoo/train.py",
          '                  "protocol": scores.protocol})', "                  })",
          [PROTOCOL + "::test_eval_every_logs_the_protocol_with_each_score"]),
    Break("eval: sample --format npz writes channels first", "ganzoo/export.py",
          "member.write(images.expand(-1, 3, -1, -1).permute(0, 2, 3, 1).contiguous().numpy().tobytes())",
          "member.write(images.expand(-1, 3, -1, -1).contiguous().numpy().tobytes())",
          ["tests/test_export.py::test_npz_is_arr_0_uint8_channels_last_rgb_with_the_classes"]),
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
