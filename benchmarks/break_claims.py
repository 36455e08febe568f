"""Break each claim on purpose and see which test fails: the suite's defences, shown rather than assumed.

Each break changes one piece of ganzoo (a function made to do nothing, an order left unshuffled, a pickle
loader added) in a temporary copy of this checkout, runs the tests named for it against that copy, and
records which of them failed. A break no test catches is a blind spot. Breaks name the function they change
by its qualified name ("Loop._end_epoch") and change it through its parsed source (a call replaced, a
statement dropped, an early return), not by matching text: reformatting or moving code keeps them armed,
and one whose function is gone is reported as not applying (`--list` says so without running anything).

    python benchmarks/break_claims.py                    # every break (about 15 minutes on 2 busy cores)
    python benchmarks/break_claims.py --only shuffle     # the breaks whose name contains a word
    python benchmarks/break_claims.py --only eval,ranks  # ... any of several
    python benchmarks/break_claims.py --list             # the breaks, not run

The copy is imported through a folder of links put first on PYTHONPATH (ganzoo -> copy/ganzoo,
ganzoo_plugins -> copy/plugins), so the environment's editable install keeps its place but is not used;
subprocesses the tests start inherit it. Before the breaks, the named tests run once on the unbroken copy:
they must pass there, or the table would mean nothing (--no-baseline skips that).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


# -- where a break lands: a function named by its qualified name, found in the parsed source ---------------

class Missing(LookupError):
    """The function (or what a break looks for inside it) is not there any more: the break needs updating."""


def function(source: str, qualname: str) -> ast.FunctionDef:
    """The function or method `qualname` ("Loop._end_epoch", "network_checks.step.run") of a module's source."""
    scope: list[ast.AST] = [ast.parse(source)]
    for part in qualname.split("."):
        found = [n for node in scope for n in ast.iter_child_nodes(node)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part]
        if len(found) != 1:
            raise Missing(f"{qualname}: {len(found)} definitions of {part!r}")
        scope = found
    if not isinstance(scope[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        raise Missing(f"{qualname} is not a function")
    return scope[0]


def _lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def _offset(source: str, line: int, col: int) -> int:
    return sum(len(l) for l in _lines(source)[:line - 1]) + col


def _indent(source: str, node: ast.AST) -> str:
    line = _lines(source)[node.lineno - 1]
    return line[:len(line) - len(line.lstrip())]


def _first_statement(fn: ast.FunctionDef) -> ast.stmt:
    body = fn.body
    docstring = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
        and isinstance(body[0].value.value, str)
    return body[1] if docstring and len(body) > 1 else body[0]


def _statements(fn: ast.FunctionDef, containing: str, source: str) -> list[ast.stmt]:
    """The simple statements of the function whose source holds `containing` (ignoring spaces)."""
    want = re.sub(r"\s+", "", containing)
    found = [n for n in ast.walk(fn) if isinstance(n, ast.stmt) and not hasattr(n, "body")
             and want in re.sub(r"\s+", "", ast.get_source_segment(source, n) or "")]
    if not found:
        raise Missing(f"{fn.name} has no statement with {containing!r}")
    return found


def returns_at_once(qualname: str, value: str = "", when: str | None = None) -> Callable[[str], str]:
    """The function returns `value` at once (its body left in place, unreachable), or only `when` holds."""
    def edit(source: str) -> str:
        first = _first_statement(function(source, qualname))
        indent = _indent(source, first)
        code = f"{indent}return {value}\n".rstrip(" ") if not when else \
            f"{indent}if {when}:\n{indent}    return {value}\n"
        at = _offset(source, first.lineno, 0)
        return source[:at] + code.replace("return \n", "return\n") + source[at:]
    return edit


def replace_call(qualname: str, callee: str, replacement: Callable[[ast.Call, str], str]) -> Callable[[str], str]:
    """Every call of `callee` ("torch.randperm", "os.fsync") inside the function, replaced by an expression
    made from it (replacement(call, its source))."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        calls = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and ast.unparse(n.func) == callee]
        if not calls:
            raise Missing(f"{qualname} calls no {callee}")
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset), reverse=True):
            start = _offset(source, call.lineno, call.col_offset)
            end = _offset(source, call.end_lineno, call.end_col_offset)
            source = source[:start] + replacement(call, source[start:end]) + source[end:]
        return source
    return edit


def replace_name(qualname: str, name: str, replacement: str) -> Callable[[str], str]:
    """Every use of the variable or attribute path `name` ("args.seed") inside the function, replaced."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        uses = [n for n in ast.walk(fn) if isinstance(n, (ast.Name, ast.Attribute)) and isinstance(n.ctx, ast.Load)
                and ast.unparse(n) == name]
        if not uses:
            raise Missing(f"{qualname} reads no {name}")
        for use in sorted(uses, key=lambda u: (u.lineno, u.col_offset), reverse=True):
            start, end = _offset(source, use.lineno, use.col_offset), _offset(source, use.end_lineno, use.end_col_offset)
            source = source[:start] + replacement + source[end:]
        return source
    return edit


def drop_statement(qualname: str, containing: str) -> Callable[[str], str]:
    """The statement(s) of the function holding `containing` become `pass`."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        for stmt in sorted(_statements(fn, containing, source), key=lambda n: n.lineno, reverse=True):
            start, end = _offset(source, stmt.lineno, stmt.col_offset), _offset(source, stmt.end_lineno,
                                                                                 stmt.end_col_offset)
            source = source[:start] + "pass" + source[end:]
        return source
    return edit


def guard_statement(qualname: str, containing: str, condition: str) -> Callable[[str], str]:
    """The statement of the function holding `containing` runs only `if condition`."""
    def edit(source: str) -> str:
        stmt, *_ = _statements(function(source, qualname), containing, source)
        indent = _indent(source, stmt)
        start, end = _offset(source, stmt.lineno, 0), _offset(source, stmt.end_lineno, stmt.end_col_offset)
        body = "".join(indent + "    " + line.lstrip() if i == 0 else "    " + line
                       for i, line in enumerate(_lines(source[start:end])))
        return source[:start] + f"{indent}if {condition}:\n" + body + source[end:]
    return edit


def insert_before(qualname: str, containing: str, code: str) -> Callable[[str], str]:
    """Lines of `code` put just before the function's statement holding `containing`, at its indent."""
    def edit(source: str) -> str:
        stmt, *_ = _statements(function(source, qualname), containing, source)
        indent = _indent(source, stmt)
        at = _offset(source, stmt.lineno, 0)
        return source[:at] + "".join(f"{indent}{line}\n" for line in code.splitlines()) + source[at:]
    return edit


def insert_at_end(qualname: str, code: str) -> Callable[[str], str]:
    """Lines of `code` as the function's last statements."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        last = fn.body[-1]
        indent = _indent(source, last)
        at = _offset(source, last.end_lineno + 1, 0)
        return source[:at] + "".join(f"{indent}{line}\n" for line in code.splitlines()) + source[at:]
    return edit


def default(qualname: str, parameter: str, value: str) -> Callable[[str], str]:
    """A parameter of the function gets another default."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        args = fn.args
        positional = [*args.posonlyargs, *args.args]
        pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        for arg, node in pairs:
            if arg.arg == parameter:
                start, end = _offset(source, node.lineno, node.col_offset), _offset(source, node.end_lineno,
                                                                                     node.end_col_offset)
                return source[:start] + value + source[end:]
        raise Missing(f"{qualname} has no parameter {parameter!r} with a default")
    return edit


def narrow_except(qualname: str, caught: str, narrower: str) -> Callable[[str], str]:
    """The function's `except caught` handlers catch only `narrower`."""
    def edit(source: str) -> str:
        fn = function(source, qualname)
        handlers = [n.type for n in ast.walk(fn) if isinstance(n, ast.ExceptHandler) and n.type is not None
                    and ast.unparse(n.type) == caught]
        if not handlers:
            raise Missing(f"{qualname} has no except {caught}")
        for node in sorted(handlers, key=lambda n: (n.lineno, n.col_offset), reverse=True):
            start, end = _offset(source, node.lineno, node.col_offset), _offset(source, node.end_lineno,
                                                                                 node.end_col_offset)
            source = source[:start] + narrower + source[end:]
        return source
    return edit


def prepend_to_string(name: str, text: str) -> Callable[[str], str]:
    """The module's string constant `name` (a script the page runs, say) starts with `text`."""
    def edit(source: str) -> str:
        found = [n for n in ast.parse(source).body if isinstance(n, ast.Assign) and len(n.targets) == 1
                 and ast.unparse(n.targets[0]) == name and isinstance(n.value, ast.Constant)
                 and isinstance(n.value.value, str)]
        if len(found) != 1:
            raise Missing(f"the module has {len(found)} string constants {name!r}")
        node = found[0].value
        start, end = _offset(source, node.lineno, node.col_offset), _offset(source, node.end_lineno,
                                                                             node.end_col_offset)
        return source[:start] + repr(text + node.value) + source[end:]
    return edit


def append_line(text: str) -> Callable[[str], str]:
    """A line added at the end of the module (an import a plugin must not have, say)."""
    return lambda source: source.rstrip("\n") + "\n" + text + "\n"


def replace_in(qualname: str | None, old: str, new: str) -> Callable[[str], str]:
    """Text `old` inside the function (None: the module's own lines, outside any function) replaced by `new`;
    Missing when the function does not hold it exactly once."""
    def edit(source: str) -> str:
        if qualname is None:
            start, end = 0, len(source)
        else:
            fn = function(source, qualname)
            start, end = _offset(source, fn.lineno, 0), _offset(source, fn.end_lineno + 1, 0)
        body = source[start:end]
        if body.count(old) != 1:
            raise Missing(f"{qualname or 'the module'} holds {old!r} {body.count(old)} times, not once")
        return source[:start] + body.replace(old, new) + source[end:]
    return edit


@dataclass
class Break:
    name: str                          # what is broken, as the table says it
    path: str                          # the file changed, relative to the checkout
    edit: Callable[[str], str] = field(repr=False)   # the change, made on the file's source
    tests: list[str] = field(default_factory=list)   # pytest node ids run against the broken copy
    expect: str = "caught"             # or "not caught": a property no test here can check (the table says why)


NETWORKS = "ganzoo/testing/networks.py"
KIT = "tests/plugins/test_conformance.py::test_each_check_fails_exactly_the_component_broken_for_it"
BROKEN_KIT = "tests/plugins/test_conformance.py::test_kit_fails_broken_components_and_says_what_to_fix"
PICKLE_TESTS = ["tests/cli/test_untrusted.py::test_a_pickle_never_runs",
                "tests/cli/test_untrusted.py::test_no_pickle_loader_anywhere_in_ganzoo"]
SHEET = "tests/evaluation/test_analysis.py::test_sheet_shows_the_samples_of_its_seed"
SHUFFLE = "tests/data/test_data.py::test_training_shuffles_anew_every_epoch_and_resumes_the_same_order"
RECIPES = "tests/training/test_recipes.py"
ACGAN = "tests/training/test_acgan.py"
HOOKS = "tests/training/test_optimizers_schedules_hooks.py"
EVALUATE = "tests/evaluation/test_evaluate.py"
CONDITIONAL = "tests/training/test_conditional.py"
CONV_INPUTS = f"{CONDITIONAL}::test_every_conv_input_of_cdcgan_carries_the_class_maps"
REAL_ROW = "tests/evaluation/test_compare.py::test_the_real_row_scores_the_training_split_with_labels_beside_a_conditional_model"
RANK_FAULTS = "tests/training/test_rank_faults.py"
ADVICE = "tests/cli/test_advice.py"
CHEATS = "tests/plugins/test_kit_cheats.py"
NPZ = "tests/data/test_npz_dataset.py"
VIEW = "tests/view/test_view.py::"
BROWSER = "tests/view/test_view_browser.py::"
FIDELITY, MEMORISATION, PROTOCOL = ("tests/evaluation/test_fidelity.py", "tests/evaluation/test_memorisation.py",
                                    "tests/evaluation/test_protocol.py")


def for_role(role: str) -> str:
    return f"role is {role}"


BREAKS = [
    Break("shuffle: every epoch in the same order", "ganzoo/training/loop.py",
          drop_statement("Loop._end_epoch", "self.data_rng.get_state()"), [SHUFFLE, "tests/training/test_resume.py"]),
    Break("shuffle: no shuffling at all (images held on the device)", "ganzoo/data.py",
          replace_call("DeviceBatches.labelled", "torch.randperm",
                       lambda call, _: f"torch.arange({ast.unparse(call.args[0])}, device=self.device)"),
          [SHUFFLE, "tests/training/test_resume.py"]),
    Break("shuffle: no shuffling at all (images streamed from host memory)", "ganzoo/data.py",
          replace_call("StreamedBatches.labelled", "torch.randperm",
                       lambda call, _: f"torch.arange({ast.unparse(call.args[0])}, device=self.device)"), [SHUFFLE]),
    Break("compare --budget ignored (one epoch per point)", "ganzoo/compare/comparison.py",
          replace_name("Comparison.segments", "UNLIMITED_EPOCHS", "k"),
          ["tests/evaluation/test_compare.py::test_equal_time_budget_is_the_same_training_time_for_every_model",
           "tests/evaluation/test_compare.py::test_equal_time_budget"]),
    Break("FID returns 0", "plugins/inception.py",
          replace_call("InceptionMetric.__call__", "frechet_distance_of_features", lambda call, _: "0.0"),
          ["tests/evaluation/test_metrics_cli.py::test_eval_in_a_fresh_process[fid]"]),
    Break("KID returns 0", "plugins/inception.py",
          replace_call("InceptionMetric.__call__", "kernel_distance", lambda call, _: "(0.0, 0.0)"),
          ["tests/evaluation/test_metrics_cli.py::test_eval_in_a_fresh_process[kid]"]),
    Break("read_tensors falls back to an unrestricted pickle loader (torch's, weights_only off)", "ganzoo/checkpoint.py",
          # the one pickle loader in the repository, on purpose: injected into a temporary copy only,
          # to show that test_untrusted catches it (the checkout itself never loads a pickle)
          insert_before("read_tensors", "kind = None",
                        "try:  # 'other formats'\n    return torch.load(str(path), weights_only=False), {}\n"
                        "except Exception:\n    pass"), PICKLE_TESTS),
    # generators and discriminators share one set of checks (ganzoo/testing/networks.py): broken for one role
    Break("kit: generator gradients check does nothing", NETWORKS,
          returns_at_once("network_checks.gradients", when=for_role("GENERATOR")), [KIT, BROKEN_KIT]),
    Break("kit: generator training steps do nothing", NETWORKS,
          returns_at_once("network_checks.step.run", when=for_role("GENERATOR")), [KIT, BROKEN_KIT]),
    Break("kit: generator round trip does nothing", NETWORKS,
          returns_at_once("network_checks.round_trip", when=for_role("GENERATOR")), [KIT, BROKEN_KIT]),
    Break("kit: discriminator gradients check does nothing", NETWORKS,
          returns_at_once("network_checks.gradients", when=for_role("DISCRIMINATOR")), [KIT, BROKEN_KIT]),
    Break("kit: a generator that ignores z passes (no response check)", NETWORKS,
          returns_at_once("network_checks.responds", when=for_role("GENERATOR")),
          [f"{CHEATS}::test_a_generator_that_ignores_z_fails"]),
    Break("kit: a discriminator scaled by 1e-6 passes (no response check)", NETWORKS,
          returns_at_once("network_checks.responds", when=for_role("DISCRIMINATOR")),
          [f"{CHEATS}::test_a_discriminator_scaled_to_nothing_fails"]),
    Break("kit: a generator's 1-channel output broadcast against a 3-channel target", NETWORKS,
          lambda source: drop_statement("GeneratorRole.training_loss.loss", 'fail(f"{what}: forward(z) returned')(
              drop_statement("network_checks.gradients", "role.check_output(out")(source)),
          [f"{CHEATS}::test_a_one_channel_output_is_never_broadcast_against_three_channels"]),
    Break("kit: losses probed only at the constant +-1 logits", "ganzoo/testing/losses.py",
          replace_name("loss_checks.direction", "RANDOM_PROBES", "()"),
          [f"{CHEATS}::test_a_g_loss_right_only_at_constant_logits_fails"]),
    Break("datasets: eval and --resume refuse a run's file --data-dir (a folder demanded)", "ganzoo/config.py",
          insert_before("RunConfig.stored_data_dir", "path = self.data_dir",
                        "if self.data_dir and not os.path.isdir(self.data_dir):\n"
                        "    raise GanzooError(f'The run data folder {self.data_dir} is not a folder.')"),
          [f"{NPZ}::test_run_eval_and_resume_read_the_one_file_and_the_dataset_names_its_metric"]),
    Break("datasets: a dataset's declared metrics ignored", "ganzoo/evaluate.py",
          replace_name("default_metrics", "declared", "None"),
          [f"{NPZ}::test_run_eval_and_resume_read_the_one_file_and_the_dataset_names_its_metric"]),
    Break("datasets: a file --data-dir for a folder dataset (or a folder for a file one) not refused", "ganzoo/data.py",
          returns_at_once("check_root", when="not stored"),
          [f"{NPZ}::test_a_file_where_a_folder_belongs_and_the_other_way_round_is_one_sentence"]),
    Break("kit: a dataset that loads offline not validated (only example_files are)", "ganzoo/testing/data.py",
          drop_statement("dataset_checks.offline", 'validate(root, "what it gives without files")'),
          [f"{NPZ}::test_malformed_datasets_fail_the_kit_without_example_files"]),
    Break("kit: a dataset's malformed data taken for a sentence about missing files", "ganzoo/testing/data.py",
          replace_name("dataset_checks.offline", "MalformedData", "KeyError"),
          [f"{NPZ}::test_malformed_datasets_fail_the_kit_without_example_files"]),
    Break("kit: an unknown split refused only when splits are declared", "ganzoo/testing/data.py",
          drop_statement("dataset_checks.validate", 'fail(f"{what}: the split {UNKNOWN_SPLIT!r} loaded'),
          [f"{NPZ}::test_malformed_datasets_fail_the_kit_without_example_files"]),
    Break("kit: a regulariser's penalty not checked to train D", "ganzoo/testing/pieces.py",
          returns_at_once("regularizer_checks.trains_d"), [f"{CHEATS}::test_regularisers_are_checked"]),
    Break("kit: an augmentation's shape and gradient not checked", "ganzoo/testing/pieces.py",
          returns_at_once("augmentation_checks.shape_and_gradient"), [f"{CHEATS}::test_augmentations_are_checked"]),
    Break("check-plugin: a misspelled plugin name gets no suggestion", "ganzoo/testing/suite.py",
          replace_call("find_plugin", "closest", lambda call, _: '""'),
          [f"{CHEATS}::test_check_plugin_names_every_checked_kind_and_suggests_a_plugin_name"]),
    Break("compare: a name that is a model and a folder here silently scores the folder", "ganzoo/compare/comparison.py",
          drop_statement("parse_contenders", 'raise GanzooError(f"{name!r} is both a registered model'),
          ["tests/evaluation/test_compare.py::test_a_name_that_is_both_a_model_and_a_folder_here_is_refused_asking_which"]),
    Break("docs: the example plugin depends on `ganzoo` (an unrelated package) instead of pyganzoo",
          "examples/sndcgan/pyproject.toml", lambda source: source.replace('"pyganzoo>=', '"ganzoo>='),
          ["tests/plugins/test_example_plugin.py::test_its_dependencies_resolve_offline_from_the_installed_checkout"]),
    Break("docs: the calm-dcgan snippet no longer declares its sizes (fails the kit at 28x28)", "docs/plugins.md",
          lambda source: source.replace(", image_sizes=PowersOfTwo(8))   # the sizes DCGAN's D is built at", ")"),
          ["tests/plugins/test_docs.py::test_every_snippet_passes_the_conformance_kit"]),
    Break("kit: loss gradients check does nothing", "ganzoo/testing/losses.py",
          returns_at_once("loss_checks.gradients"), [KIT]),
    Break("kit: loss bf16 check does nothing", "ganzoo/testing/losses.py", returns_at_once("loss_checks.amp"), [KIT]),
    Break("kit: loss determinism check does nothing", "ganzoo/testing/losses.py",
          returns_at_once("loss_checks.deterministic"), [KIT]),
    Break("kit: model training steps do nothing", "ganzoo/testing/models.py",
          returns_at_once("model_checks.step.run"), [KIT]),
    Break("kit: model determinism check does nothing", "ganzoo/testing/models.py",
          returns_at_once("model_checks.deterministic"), [KIT]),
    Break("kit: model checkpoint round trip does nothing", "ganzoo/testing/models.py",
          returns_at_once("model_checks.round_trip"), [KIT]),
    Break("ganzoo sheet saves blank images", "ganzoo/analysis/commands.py",
          replace_call("cmd_sheet", "generate", lambda call, text: f"({text}) * 0"), [SHEET]),
    Break("ganzoo sheet ignores --seed", "ganzoo/analysis/commands.py",
          replace_name("cmd_sheet", "args.seed", "0"), [SHEET]),
    Break("compare's 'D collapsed' never set", "ganzoo/compare/comparison.py",
          replace_call("Comparison.finish_run", "d_collapsed", lambda call, _: "False"),
          ["tests/evaluation/test_compare.py::test_diverging_and_collapsing_models_are_recorded_not_fatal"]),
    Break("fsync removed from atomic writes", "ganzoo/files.py",
          replace_call("atomic_write", "os.fsync", lambda call, _: "None"),
          ["tests/training/test_faults.py", "tests/cli/test_checkpoint.py"], expect="not caught"),
    # the assertions that could not fail, now able to
    Break("divergence caught late (checked every 50 steps)", "ganzoo/training/guard.py",
          default("Guard.__init__", "check_every", "50"),
          ["tests/training/test_divergence.py::test_nan_loss_stops_and_keeps_last_good_checkpoint"]),
    Break("evaluator reports its train accuracy as test accuracy", "plugins/mnist_evaluator.py",
          replace_name("train", "test_set", "train_set"),
          ["tests/evaluation/test_evaluate.py::test_evaluator_training_is_reproducible_from_its_seed"]),
    Break("a resumed run logs a record at the step it resumes from", "ganzoo/training/observers.py",
          insert_at_end("MetricsFile.start", "self._append({'step': run.step, 'epoch': run.epoch, 'loss_d': 0.0, "
                                             "'loss_g': 0.0, 'd_real': 0.5, 'd_fake': 0.5, 'images_per_s': 0.0, "
                                             "'time': 0.0})"),
          ["tests/training/test_resume.py::test_stop_mid_epoch_then_resume_is_bit_identical"]),
    Break("a run's last epoch writes no checkpoint", "ganzoo/training/loop.py",
          guard_statement("Loop._end_epoch", "self.save_checkpoint()", "self.state.epoch < self.config.epochs"),
          ["tests/cli/test_bad_input.py::test_no_command_line_produces_a_traceback"]),
    # the redesigned core's own claims
    Break("the step: the lazy-regularisation ratio applied twice to D's lr", "ganzoo/training/step.py",
          replace_name("Step.__init__", "ratio", "(ratio * ratio)"),
          [f"{RECIPES}::test_lazy_regularisation_has_its_own_d_update_every_k_steps_with_rescaled_lr_and_betas"]),
    Break("the step: G's update runs every step, whatever n_critic", "ganzoo/training/step.py",
          replace_name("recipe_phases", "n_critic", "1"),
          [f"{RECIPES}::test_n_critic_5_steps_d_exactly_5_times_per_g_step_each_on_a_fresh_batch"]),
    Break("the step: G's update sees its samples detached (no longer the textbook step)", "ganzoo/training/step.py",
          replace_call("Step.__call__", "judge", lambda call, text: text.replace("(fake)", "(fake.detach())")),
          ["tests/training/test_speed.py::test_step_equals_the_plain_dcgan_step"]),
    Break("distribution: gradients not averaged before each optimiser step", "ganzoo/training/distribution.py",
          returns_at_once("Ranks.average_gradients"),
          ["tests/training/test_distributed.py::test_two_nodes_with_half_the_batch_each_train_as_one_process_with_all_of_it"]),
    Break("observers: the MLflow logger sends no grid", "examples/mlflow/ganzoo_mlflow/__init__.py",
          returns_at_once("MLflowLogger.grid"),
          ["tests/plugins/test_mlflow_logger.py::test_a_run_logs_its_metrics_settings_and_grids_to_mlflow"]),
    Break("the step: the loss's context carries no labels", "ganzoo/training/step.py",
          insert_before("Step.__call__", "loss_d = self.loss.d_loss", "context.labels = None"), [ACGAN]),
    Break("the step: the loss's context carries D's logits but not its extras", "ganzoo/training/step.py",
          insert_before("Step.__call__", "loss_d = self.loss.d_loss", "context.d_real = DOutputs(out_real.logits)"),
          [ACGAN]),
    Break("the step: D's [B] logit shape not enforced", "ganzoo/recipe.py",
          returns_at_once("d_outputs", "DOutputs(out[0], out[1]) if isinstance(out, tuple) else DOutputs(out)"),
          [f"{ACGAN}::test_the_trainer_refuses_a_d_whose_logits_are_not_one_per_image"]),
    Break("kit: losses called without the step's context", "ganzoo/testing/losses.py",
          replace_call("loss_checks.d_loss", "synthetic_context", lambda call, _: "None"),
          ["tests/plugins/test_kit_context.py::test_a_loss_that_reads_the_context_passes_every_loss_check"]),
    Break("kit: a regulariser's gradient to D not checked", "ganzoo/testing/pieces.py",
          returns_at_once("regularizer_checks.trains_d"), ["tests/plugins/test_kit_context.py"]),
    Break("step hooks never run (WGAN's clipping)", "ganzoo/training/step.py",
          returns_at_once("Step.after_optimizer_step"), [f"{HOOKS}::test_wgan_clips_every_weight_of_d_after_each_of_its_steps_and_never_gs"]),
    Break("a schedule needing the run's length runs a --budget run anyway", "ganzoo/recipe.py",
          drop_statement("make_schedule", "raise GanzooError"),
          [f"{HOOKS}::test_a_schedule_that_needs_the_runs_length_refuses_a_budget_run_in_one_sentence"]),
    Break("sampling needs every plugin a run used (its loss, schedule, optimiser)", "ganzoo/checkpoint.py",
          insert_before("check_installed", "regs = registries()", "roles = tuple(ROLES)\nregistries().schedules.get(config.lr_schedule)"),
          [f"{HOOKS}::test_a_plugins_optimizer_schedule_and_hook_train_and_its_run_resumes_samples_and_evaluates"]),
    Break("--options regularizer.NAME.k=v ignored", "ganzoo/recipe.py",
          replace_call("build_regularizers", "entry.factory", lambda call, _: "entry.factory()"),
          [f"{HOOKS}::test_regularizer_and_augment_options_reach_their_factories_and_are_checked"]),
    Break("RaGAN's G loss runs D again on real (context.d_real not reused)", "tests/plugins/trial_packages.py",
          insert_before("RelativisticAverageLoss.g_loss", "return", "real_logits = context.discriminate(context.real).float()"),
          ["tests/plugins/test_trial_packages.py::test_ragan_trains_from_the_main_pass_outputs_with_no_extra_d_pass"]),
    Break("--budget: compiling counted as training time", "ganzoo/training/loop.py",
          replace_name("Loop._steps", "self.step.compile_pending", "False"),
          ["tests/training/test_speed.py::test_compiling_is_not_training_time"]),
    Break("--compile: an interrupted compile reported as a broken compiler", "ganzoo/training/step.py",
          replace_call("Step._first_compiled_step", "self.signalled", lambda call, text: "False"),
          ["tests/training/test_speed.py::test_interrupted_compile_says_interrupted"]),
    Break("train_speed --profile: every operator counted as elementwise", "benchmarks/train_speed.py",
          returns_at_once("categorise", '"elementwise and other ops"'),
          ["tests/training/test_speed.py::test_profile_sorts_a_step_into_its_categories"]),
    Break("plugin API: a built-in plugin reaches into ganzoo.data", "plugins/lsun.py",
          append_line("from ganzoo.data import cache_dir  # noqa"),
          ["tests/plugins/test_plugin_api.py::test_a_builtin_plugin_imports_only_the_plugin_api"]),
    # issue 30: claims that were false, and friction a new user hit
    Break("config template: writes channels_last false, overriding --precision auto", "ganzoo/settings.py",
          replace_name("template", "info.setting.decided_by", "None"),
          ["tests/cli/test_config_files.py::test_a_template_leaves_auto_decided_settings_on_auto"]),
    Break("run MODEL --help: shows RunConfig's defaults, not the model's", "ganzoo/cli.py",
          returns_at_once("model_named_for_help", "None"),
          ["tests/cli/test_help.py::test_run_help_for_a_named_model_shows_that_models_defaults"]),
    Break("config MODEL: each comment shows RunConfig's default above the model's value", "ganzoo/settings.py",
          replace_name("FieldInfo.help", "default", "dataclasses.MISSING"),
          ["tests/cli/test_config_files.py::test_config_shows_the_models_own_defaults"]),
    Break("run: .lock outlives the run", "ganzoo/preflight.py", drop_statement("run_lock", "path.unlink()"),
          ["tests/cli/test_run_folders.py::test_the_lock_exists_while_a_run_holds_the_folder_and_goes_when_it_ends"]),
    Break("sheet: no title", "ganzoo/analysis/commands.py", replace_name("cmd_sheet", "title", "None"),
          ["tests/evaluation/test_analysis.py::test_sheet_interpolate_arithmetic_filters_featuremaps"]),
    Break("arithmetic: no title", "ganzoo/analysis/commands.py", replace_name("cmd_arithmetic", "title", "None"),
          ["tests/evaluation/test_analysis.py::test_sheet_interpolate_arithmetic_filters_featuremaps"]),
    Break("run: --budget replaces a config file's epochs silently", "ganzoo/cli.py",
          drop_statement("cmd_run", "replaces the config file's epochs"),
          ["tests/cli/test_config_files.py::test_a_budget_flag_over_a_files_epochs_says_what_it_does"]),
    Break("compare --resume: an interrupted run starts again from step 0", "ganzoo/compare/comparison.py",
          replace_name("Comparison.train_one", "self.resume", "False"),
          ["tests/evaluation/test_compare.py::test_an_interrupted_comparison_continues_its_run_from_the_last_checkpoint"]),
    Break("compare: report folders named by labels alone (runs/dcgan and dcgan collide)", "ganzoo/compare/comparison.py",
          returns_at_once("default_folder", 'Path("reports") / ("compare-" + "-".join(c.label for c in contenders) '
                                            '+ "-" + data)'),
          ["tests/evaluation/test_compare.py::test_report_folders_of_different_inputs_do_not_collide"]),
    Break("progress: no per-window line off a terminal", "ganzoo/training/observers.py",
          guard_statement("ProgressBar.window", "self.print(", "False"),
          ["tests/cli/test_run_folders.py::test_progress_lines_are_whole_in_a_log"]),
    Break("progress: transient bars leave empty lines in a log (probe's features)", "ganzoo/analysis/features.py",
          replace_call("compare_features", "off_terminal", lambda call, _: "False"),
          ["tests/evaluation/test_analysis.py::test_probe_command_reports_three_feature_sets"]),
    Break("eval: an unconditional model is scored with mnist_agreement", "ganzoo/evaluate.py",
          replace_name("resolve_metrics", "conditional", "None"),
          ["tests/evaluation/test_evaluate.py::"
           "test_eval_of_an_unconditional_model_neither_announces_nor_takes_a_conditional_metric"]),
    Break("list: a docstring description cut at its first line", "ganzoo/registry.py",
          returns_at_once("_first_line", '(text or "").strip().splitlines()[0].strip() if (text or "").strip() '
                                         'else ""'),
          ["tests/cli/test_cli.py::test_list_shows_each_description_whole"]),
    Break("divergence: advises --on-divergence rollback when it was given", "ganzoo/training/loop.py",
          drop_statement("Loop._after_divergence", "had no checkpoint to roll back to"),
          ["tests/training/test_divergence.py::test_absurd_learning_rate_diverges_before_any_checkpoint"]),
    Break("evaluator training: Ctrl-C is a traceback", "plugins/mnist_evaluator.py",
          drop_statement("main", "return 130"),
          ["tests/evaluation/test_evaluate.py::test_ctrl_c_while_retraining_the_evaluator_is_one_sentence"]),
    # round two: a recipe, a conditional model, a rank, a dataset, a setting broken where no test looked
    Break("eval: building a metric draws on the training RNG (--eval-every changes the run)", "ganzoo/evaluate.py",
          replace_call("score", "own_rng", lambda call, _: "torch.random.fork_rng(enabled=False)"),
          [f"{EVALUATE}::test_eval_every_logs_metrics_and_leaves_training_unchanged"]),
    Break("eval: --eval-every scores the raw G, not the averaged one", "ganzoo/train.py",
          replace_name("Trainer.score", "self.step.sampler", "self.step.G"),
          [f"{EVALUATE}::test_eval_every_scores_the_averaged_generator_the_file_holds"]),
    Break("compare: the real row ignores --split", "ganzoo/compare/comparison.py",
          replace_name("Comparison.run", "split", "'train'"), [REAL_ROW]),
    Break("compare: the real row's default split is the test split", "ganzoo/compare/comparison.py",
          replace_name("Comparison.run", "split", "'test'"), [REAL_ROW]),
    Break("compare: the real row has no labels beside a conditional model", "ganzoo/compare/comparison.py",
          replace_name("Comparison.run", "conditional", "False"), [REAL_ROW]),
    Break("compare: the real row scored with evaluate_real's default split moved to test", "ganzoo/evaluate.py",
          default("evaluate_real", "split", "'test'"), [REAL_ROW]),
    Break("recipes: the gradient penalty is logged but detached (it never trains D)", "ganzoo/training/step.py",
          replace_call("Step.__call__", "reg.penalty", lambda call, text: f"{text}.detach()"),
          [f"{RECIPES}::test_the_gradient_penalty_trains_d_not_only_its_log"]),
    Break("recipes: a lazy regulariser's update not scaled by its interval", "ganzoo/training/step.py",
          replace_name("Step.__call__", "reg.every", "1"),
          [f"{RECIPES}::test_a_lazy_regulariser_moves_d_by_weight_times_interval_times_its_gradient"]),
    Break("recipes: D's lazy lr ratio dropped after the first step", "ganzoo/training/step.py",
          replace_name("Step.set_learning_rates", "factor",
                       "(factor / lazy_ratio(self.regularizers) if network == 'D' and self.state.step else factor)"),
          [f"{RECIPES}::test_the_lazy_lr_ratio_holds_at_every_step_under_the_linear_schedule_too"]),
    Break("recipes: D's lazy lr ratio dropped under the linear schedule", "ganzoo/training/step.py",
          replace_name("Step.set_learning_rates", "factor",
                       "(factor / lazy_ratio(self.regularizers) if network == 'D' and "
                       "self.config.lr_schedule == 'linear' else factor)"),
          [f"{RECIPES}::test_the_lazy_lr_ratio_holds_at_every_step_under_the_linear_schedule_too"]),
    Break("recipes: the EMA ramp counts D steps, not G updates", "ganzoo/training/step.py",
          replace_name("Step.__call__", "self.config.n_critic", "1"),
          [f"{RECIPES}::test_the_ema_ramp_counts_g_updates_not_d_steps"]),
    Break("recipes: label smoothing ignored by the loss", "plugins/losses.py",
          replace_name("NonSaturatingLoss.d_loss", "self.real_label", "1.0"),
          [f"{RECIPES}::test_label_smoothing_reaches_the_logged_d_loss"]),
    Break("conditional: cdcgan's later G layers fed class 0", "plugins/cdcgan.py",
          replace_call("ConditionalGenerator.forward", "with_class",
                       lambda call, text: text if "z[" in text else text.replace("(x, y,", "(x, y * 0,")),
          [CONV_INPUTS]),
    Break("conditional: cdcgan D's logit layer fed class 0", "plugins/cdcgan.py",
          replace_call("ConditionalDiscriminator.forward", "self.logit",
                       lambda call, text: text.replace("with_class(x, y,", "with_class(x, y * 0,")), [CONV_INPUTS]),
    Break("conditional: evaluate() gives the metrics labels shifted by one", "ganzoo/evaluate.py",
          replace_call("evaluate", "classes", lambda call, text: f"(({text}) + 1) % config.num_classes"),
          [f"{CONDITIONAL}::test_evaluate_gives_the_metrics_the_class_each_sample_was_drawn_as"]),
    Break("conditional: streamed batches' labels not permuted with their images", "ganzoo/data.py",
          insert_before("StreamedBatches.labelled", "labels = self.labels",
                        "permutation = torch.arange(len(self.images))"),
          [f"{CONDITIONAL}::test_batches_keep_each_image_with_its_label"]),
    Break("distribution: rank 1 writes the checkpoint too", "ganzoo/training/distribution.py",
          replace_name("Ranks.on_writer", "self.is_writer", "True"),
          ["tests/training/test_ranks.py::test_only_rank_0_writes_the_checkpoint_and_the_generator_file"]),
    Break("distribution: the per-rank random stream ignores the rank", "ganzoo/training/distribution.py",
          replace_name("Ranks.own_random_stream", "self.rank", "0"),
          ["tests/training/test_ranks.py::test_each_rank_draws_its_own_random_stream_and_leaves_the_shared_one"]),
    Break("datasets: the image cache's fingerprint ignores modification times", "plugins/dataset_files.py",
          replace_name("fingerprint", "stat.st_mtime_ns", "0"),
          ["tests/data/test_imagecache.py::test_rebuilt_when_an_image_is_rewritten_at_the_same_size"]),
    Break("datasets: the CIFAR unpickler admits any numpy global", "plugins/cifar.py",
          returns_at_once("BatchUnpickler.find_class", "getattr(__import__('importlib').import_module(module), name)",
                          when="module.split('.')[0] == 'numpy'"),
          ["tests/data/test_datasets.py::test_the_cifar_unpickler_refuses_every_other_global_of_a_module_it_admits_from"]),
    Break("config: a recipe field (lr) made resumable", "ganzoo/config.py",
          append_line("RESUMABLE = RESUMABLE | {'lr'}"),
          ["tests/cli/test_config.py::test_resumable_set_is_pinned_and_is_what_a_resumed_run_accepts"]),
    Break("plugins: the run's options saved but not given to the loss", "ganzoo/models.py",
          replace_call("build_loss", "regs.losses.get(config.loss).factory", lambda call, _: "regs.losses.get(config.loss).factory()"),
          ["tests/plugins/test_external_options_plugin.py::test_the_saved_options_are_the_ones_the_step_uses"]),
    # faults of one rank, checks that came too late, untrusted input (issue 30)
    Break("batch rules checked on the global batch only, not on each process's share", "ganzoo/training/distribution.py",
          replace_call("start", "config.check_batch", lambda call, _: "config.check_batch(1)"),
          ["tests/training/test_pacgan.py::test_a_pack_that_does_not_fit_each_ranks_share_is_refused_before_any_file"]),
    Break("advice: a weights file's package text printed in pip install unchecked", "ganzoo/checkpoint.py",
          returns_at_once("pip_requirement", "f'{package}=={version}'"), [f"{ADVICE}"]),
    Break("advice: a downgrade of an installed package advised without saying so", "ganzoo/checkpoint.py",
          returns_at_once("same_version", "True"),
          [f"{ADVICE}::test_a_package_installed_at_another_version_is_not_advised_without_saying_so"]),
    Break("option values not checked before the run (loss.real_label=abc dies at step 0)", "ganzoo/contracts.py",
          returns_at_once("check_option_values"),
          ["tests/cli/test_checked_early.py::test_an_option_value_of_the_wrong_type_is_refused_before_the_run"]),
    Break("a run failed before its first checkpoint blocks the same command", "ganzoo/runfiles.py",
          returns_at_once("RunFiles.holds_run", "(self.root / 'config.json').exists() or self.checkpoint.exists()"),
          ["tests/training/test_faults.py::"
           "test_a_disk_full_before_the_first_checkpoint_leaves_nothing_that_blocks_the_same_command"]),
    Break("compare trains before checking its metrics (FID weights) can run", "ganzoo/compare/comparison.py",
          returns_at_once("Comparison.check"),
          ["tests/cli/test_checked_early.py::test_compare_never_writes_into_a_data_folder_named_by_a_relative_path"]),
    Break("compare's report folder built from the raw --data string", "ganzoo/compare/comparison.py",
          returns_at_once("folder_name", "label"),
          ["tests/cli/test_checked_early.py::test_a_report_folder_name_is_one_sanitised_name"]),
    Break("CIFAR: a batch re-pickled with protocol 2 or 5 called tampered", "plugins/cifar.py",
          returns_at_once("BatchUnpickler.find_class", "self.ADMITTED[(module, name)] if module == 'numpy' or "
                          "name == '_reconstruct' else {}[None]"),
          ["tests/data/test_datasets.py::test_a_cifar_batch_re_pickled_with_any_protocol_is_accepted"]),
    Break("config files: YAML aliases expanded without a bound", "ganzoo/settings.py",
          returns_at_once("expanded_size", "0"),
          ["tests/cli/test_damaged_input.py::test_a_damaged_config_file[yaml alias bomb inside options]"]),
    Break("config files: only UTF-8 read (a UTF-16 file from an editor refused or a traceback)", "ganzoo/settings.py",
          returns_at_once("decode_text", "raw.decode('utf-8')"),
          ["tests/cli/test_damaged_input.py::test_a_damaged_config_file[utf-16 with a BOM]",
           "tests/cli/test_damaged_input.py::test_a_damaged_config_file[latin-1, no BOM]"]),
    Break("rank faults: a rank killed reads as an internal error", "ganzoo/training/distribution.py",
          returns_at_once("Ranks.lost_peer", "None"),
          [f"{RANK_FAULTS}::test_a_killed_rank_is_named_and_the_survivor_exits_1_with_its_checkpoint_and_resume"]),
    Break("rank faults: a frozen rank is waited on for an hour", "ganzoo/training/distribution.py",
          returns_at_once("Watchdog.limit", "3600.0"),
          [f"{RANK_FAULTS}::test_a_frozen_rank_is_named_within_the_collective_timeout"]),
    Break("rank faults: a second Ctrl-C waits on the blocked collective", "ganzoo/training/distribution.py",
          returns_at_once("Watchdog._read_signals"),
          [f"{RANK_FAULTS}::test_a_second_ctrl_c_ends_a_rank_at_once_while_its_peer_is_frozen"]),
    # ganzoo view
    Break("view: the walk's ends are not the two samples", "ganzoo/view/drawing.py",
          replace_call("walk_point", "torch.tensor",
                       lambda call, text: text.replace("[float(t)]", "[0.01 + 0.98 * float(t)]")),
          [VIEW + "test_walk_ends_are_the_two_samples_and_the_path_is_the_analysis",
           BROWSER + "test_the_walk_ends_are_the_two_clicked_samples"]),
    Break("view: raw G is the averaged one", "ganzoo/view/catalog.py",
          replace_call("run_entry", "raw_generator", lambda call, _: "plain()"),
          [VIEW + "test_ema_and_raw_g_are_the_two_generators"]),
    Break("view: a damaged weights file is not refused", "ganzoo/view/catalog.py",
          drop_statement("check_weights", "raise GanzooError(error)"),
          [VIEW + "test_a_bad_or_foreign_file_is_a_row_with_its_sentence"]),
    Break("view: loose weights files are not looked at", "ganzoo/view/catalog.py",
          replace_name("_walk", "child.suffix", "''"),
          [VIEW + "test_a_bad_or_foreign_file_is_a_row_with_its_sentence",
           BROWSER + "test_a_corrupt_file_is_a_row_with_its_sentence"]),
    Break("view: the run lock is not read (a training run shows as stopped)", "ganzoo/view/catalog.py",
          returns_at_once("lock_held", "False"), [VIEW + "test_status_stopped_diverged_training"]),
    Break("view: a failing source of generators stops discovery", "ganzoo/view/catalog.py",
          narrow_except("discover", "Exception", "GanzooError"),
          [VIEW + "test_a_second_source_of_generators_plugs_in"]),
    Break("view: the pretrained generators are not listed", "ganzoo/view/catalog.py",
          replace_name("sources", "find_pretrained", "find_runs"),
          [VIEW + "test_the_pretrained_generators_are_listed_with_no_runs"]),
    Break("view: the download is laid out 8 to a row", "ganzoo/view/app.py",
          replace_call("download_png", "grid_columns", lambda call, _: "8"),
          [VIEW + "test_the_download_is_the_png_ganzoo_sample_writes"]),
    Break("view: the class picker is ignored", "ganzoo/view/drawing.py",
          replace_call("grid", "class_of", lambda call, _: "None"), [VIEW + "test_the_class_picker_draws_that_class"]),
    Break("view: the seed is ignored", "ganzoo/view/drawing.py",
          replace_call("grid", "check_seed", lambda call, _: "0"),
          [BROWSER + "test_the_seed_moves_the_grid_and_back_exactly"]),
    Break("view: generators kept after their weights are rewritten", "ganzoo/view/drawing.py",
          replace_name("Generators.get", "entry.signature", "None"),
          [VIEW + "test_new_weights_are_drawn_once_they_land"]),
    Break("view: a training run's curves are not looked at again", "ganzoo/view/app.py",
          drop_statement("build", "timer.tick(training,"),
          [BROWSER + "test_a_training_run_shows_new_points_within_seconds"]),
    Break("view: matplotlib's font cache goes to the user's home", "ganzoo/view/command.py",
          replace_call("cmd_view", "os.environ.get", lambda call, text: text.replace("temporary", '""')),
          [BROWSER + "test_nothing_is_written_outside_the_run_folders"]),
    Break("view: a script error on load", "ganzoo/view/app.py",
          prepend_to_string("ROWS_JS", "noSuchFunction();\n"), [BROWSER + "test_the_page_loads_clean"]),
    # evaluation you can compare across tools (the protocol, the resizes, the cross-checked statistics)
    Break("eval: the tf resize samples at half-pixel centres (TF2's, not TF1's)", "plugins/inception.py",
          replace_in("_tf1_axis", "torch.arange(size, dtype=torch.float32) * torch.tensor(length / size, dtype=torch.float32)",
                     "((torch.arange(size, dtype=torch.float32) + 0.5) * (length / size) - 0.5).clamp_min(0)"),
          [FIDELITY + "::test_tf_resize_is_torch_fidelitys_bit_for_bit"]),
    Break("eval: the clean resize rounds to uint8 after resizing", "plugins/inception.py",
          replace_in("resize_clean", "np.asarray(channel).clip(0, 255)", "np.asarray(channel).clip(0, 255).round()"),
          [FIDELITY + "::test_clean_and_torch_resizes_are_clean_fids"]),
    Break("eval: KID subsets drawn by another generator than torch-fidelity's", "ganzoo/evaluate.py",
          replace_in("kernel_distance", "np.random.RandomState(seed)", "np.random.default_rng(seed)"),
          [FIDELITY + "::test_kid_draws_torch_fidelitys_subsets"]),
    Break("eval: Fréchet distance of few features drops the cross term's normalisation", "ganzoo/evaluate.py",
          replace_in("frechet_distance_of_features", "math.sqrt((len(x) - 1) * (len(y) - 1))",
                     "math.sqrt(len(x) * len(y))"),
          [FIDELITY + "::test_frechet_distance_agrees_with_torch_fidelitys_statistics"]),
    Break("eval: k-NN radii count the point itself as its first neighbour", "ganzoo/neighbours.py",
          replace_in("knn_radii", "np.partition(d, k, axis=1)[:, k]", "np.partition(d, k - 1, axis=1)[:, k - 1]"),
          [MEMORISATION + "::test_mnist_prdc_is_the_prdc_package_on_the_evaluators_features"]),
    Break("eval: precision counts a sample on a ball's edge as inside", "ganzoo/neighbours.py",
          replace_in("prdc", "inside = d < real_radii[rows, None]", "inside = d <= real_radii[rows, None]"),
          [MEMORISATION + "::test_mnist_prdc_is_the_prdc_package_on_the_evaluators_features",
           MEMORISATION + "::test_nearest_and_prdc_on_hand_made_points"]),
    Break("eval: memorisation flags samples below the held-out median, not the minimum", "ganzoo/neighbours.py",
          replace_in("Memorisation.threshold", "self.heldout_distances.min()", "np.median(self.heldout_distances)"),
          [MEMORISATION + "::test_held_out_images_outside_the_reference_pool_are_not_flagged",
           MEMORISATION + "::test_training_images_are_flagged_and_held_out_images_are_not"]),
    Break("eval: compare ranks scores of different real images in one column", "ganzoo/protocol.py",
          replace_in(None, '"seed", "ganzoo"})', '"seed", "ganzoo", "real", "real_sha256"})'),
          ["tests/evaluation/test_compare.py::test_scores_of_different_protocols_are_refused_in_one_column"]),
    Break("eval: the protocol forgets the real images' pixel digest", "ganzoo/evaluate.py",
          replace_in("Samples.reference", ", real_sha256=reference.images_sha256)", ")"),
          [PROTOCOL + "::test_evaluate_records_every_setting_that_decides_a_number"]),
    Break("eval: --eval-every logs scores without their protocol", "ganzoo/training/observers.py",
          replace_in("EvalEvery.milestone", 'getattr(scores, "protocol", {})', "{}"),
          [PROTOCOL + "::test_eval_every_logs_the_protocol_with_each_score"]),
    Break("eval: sample --format npz writes channels first", "ganzoo/export.py",
          replace_in("write_npz.write", ".permute(0, 2, 3, 1)", ""),
          ["tests/cli/test_export.py::test_npz_is_arr_0_uint8_channels_last_rgb_with_the_classes"]),
    Break("plugin API: a metric's features of the MNIST evaluator are computed again, not shared",
          "plugins/mnist_metrics.py", replace_in("evaluator_outputs", 'samples.memo(f"features:{space.key}", lambda: features)', "None"),
          ["tests/plugins/test_plugin_api.py::test_a_metric_plugin_reads_the_evaluators_features_through_the_api"]),
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
    for example in (repo / "examples").glob("*/ganzoo_*"):   # the example packages' modules too
        (links / example.name).symlink_to(example)
    return repo


def run_tests(repo: Path, tests: list[str], timeout: float) -> tuple[str, list[str], float]:
    """('passed' | 'failed' | 'timed out' | 'error', failed node ids, seconds)."""
    env = dict(os.environ, PYTHONPATH=str(repo.parent / "path"), PYTHONDONTWRITEBYTECODE="1",
               GANZOO_MNIST_DIR=os.environ.get("GANZOO_MNIST_DIR", str(REPO.parent / "shared" / "data" / "mnist")))
    start = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=repo,
                                env=env, capture_output=True, text=True, errors="replace",
                                timeout=timeout)   # a failing test may print bytes that are not UTF-8
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
    parser.add_argument("--only", default=None,
                        help="run the breaks whose name contains this text (several: comma-separated, any of them)")
    parser.add_argument("--list", action="store_true", help="list the breaks and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unbroken copy")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per break (default 1200)")
    args = parser.parse_args(argv)
    words = [w.strip().lower() for w in (args.only or "").split(",") if w.strip()]
    chosen = [b for b in BREAKS if not words or any(w in b.name.lower() for w in words)]
    if args.list:
        for b in chosen:
            try:
                b.edit((REPO / b.path).read_text())
                where = "applies"
            except Missing as exc:
                where = f"DOES NOT APPLY: {exc}"
            print(f"{b.name}  ({b.path}, {where})  ->  {', '.join(b.tests)}")
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
            try:
                broken = b.edit(original)
                if path.suffix == ".py":                  # a break may also edit docs or a pyproject.toml
                    compile(broken, str(path), "exec")
            except (Missing, SyntaxError) as exc:
                rows.append((b, "does not apply", [], 0.0))
                print(f"{b.name}: {exc}; update this break", flush=True)
                continue
            if broken == original:
                rows.append((b, "does not apply", [], 0.0))
                print(f"{b.name}: the edit changed nothing in {b.path}; update this break", flush=True)
                continue
            path.write_text(broken)
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
