"""One plugin API: the built-in plugins reach ganzoo only through ganzoo.api, and one table of plugin kinds
derives the hooks, the registries, the contracts and the kit's kinds."""

import ast
from pathlib import Path

import pytest

import ganzoo.api
from ganzoo import hookspecs
from ganzoo.contracts import CONTRACTS
from ganzoo.kinds import KINDS
from ganzoo.plugins import HOOKS, Registries, registries
from ganzoo.registry import Entry
from ganzoo.testing import CHECKED_KINDS

from helpers import REPO

PLUGINS = sorted((REPO / "plugins").glob("*.py"))


def ganzoo_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import of a ganzoo module in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ganzoo":
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "ganzoo"]
    return found


@pytest.mark.parametrize("path", PLUGINS, ids=lambda p: p.name)
def test_a_builtin_plugin_imports_only_the_plugin_api(path):
    for line, module, names in ganzoo_imports(path):
        assert module == "ganzoo.api", f"{path.name}:{line} imports {module}; a plugin imports from ganzoo.api only"
        unknown = sorted(set(names) - set(ganzoo.api.__all__))
        assert not unknown, f"{path.name}:{line} imports {unknown}, which ganzoo.api does not name"


def test_the_check_sees_an_import_past_the_api(tmp_path):
    """The test above can fail: a plugin reaching into ganzoo.data is reported with its line."""
    plugin = tmp_path / "sneaky.py"
    plugin.write_text("from ganzoo.api import hookimpl\n\ndef f():\n    from ganzoo.data import cache_dir\n")
    with pytest.raises(AssertionError, match=r"sneaky.py:4 imports ganzoo.data"):
        test_a_builtin_plugin_imports_only_the_plugin_api(plugin)


def test_every_name_of_the_api_is_importable_and_the_package_names_a_subset():
    for name in ganzoo.api.__all__:
        assert getattr(ganzoo.api, name) is not None, name
    assert set(ganzoo.__all__) - {"DISTRIBUTION"} <= set(ganzoo.api.__all__)


def test_one_table_of_kinds_derives_hooks_registries_contracts_and_the_kits_kinds():
    specs = sorted(name for name, fn in vars(hookspecs).items() if hasattr(fn, "ganzoo_spec"))
    assert specs == sorted(kind.hook for kind in KINDS) == sorted(HOOKS)
    assert [r.kind for r in registries().all()] == [kind.name for kind in KINDS]
    assert all(getattr(Registries(), kind.plural).kind == kind.name for kind in KINDS)
    assert CONTRACTS == {kind.name: kind.contract for kind in KINDS}
    assert CHECKED_KINDS == tuple(kind.name for kind in KINDS if kind.checked)
    assert hookspecs.register_loggers.__doc__ == next(k.doc for k in KINDS if k.name == "logger")


def test_a_temporary_entry_lives_for_its_block_only():
    losses = registries().losses
    standard = losses.get("nonsaturating")
    with losses.temporary(Entry("nonsaturating", object, "shadow", "test"), Entry("brand-new", object, "new", "test")):
        assert losses.get("nonsaturating").description == "shadow" and "brand-new" in losses
    assert losses.get("nonsaturating") is standard and "brand-new" not in losses


def test_a_metric_plugin_reads_the_evaluators_features_through_the_api(monkeypatch, request):
    """A third party's metric asks ganzoo.api for the MNIST evaluator's feature space: it gets the evaluator's own
    features of the samples and of the real test split, the network in its score's protocol, and the one pass of
    the evaluator over the samples that the built-in metrics make (the features are shared, not computed again)."""
    import torch

    from ganzoo.api import feature_space
    from ganzoo.evaluate import evaluate_real, file_sha256
    from ganzoo_plugins.mnist_evaluator import WEIGHTS, MnistEvaluator, load_evaluator
    from helpers import install_plugin

    seen = {}

    def feature_gap(samples):
        space = feature_space("mnist_evaluator", samples)
        ours, real = samples.features(space), samples.reference(space).features
        seen.update(images=samples.images, ours=ours, real=real)
        return {"feature_gap": float((ours.mean(0) - real.mean(0)).norm())}

    install_plugin(monkeypatch, request, "gap_metric",
                   register_metrics=lambda register: register("feature_gap", feature_gap, datasets=("fake",)))
    scored = []
    score = MnistEvaluator.score

    def counted(self, images, *args, **kwargs):
        scored.append(len(images))
        return score(self, images, *args, **kwargs)

    monkeypatch.setattr(MnistEvaluator, "score", counted)
    common = dict(data="fake", image_size=32, channels=1, metrics="mnist_classes,feature_gap", n=200, device="cpu")
    evaluate_real(**common)                                        # the real test split's features: now cached
    scored.clear()
    scores = evaluate_real(**common, seed=1)
    assert scored == [200]                                         # one pass over the samples, for both metrics
    evaluator = load_evaluator(str(WEIGHTS), "cpu")
    with torch.no_grad():
        assert torch.equal(seen["ours"], score(evaluator, seen["images"])[0])
    assert seen["real"].shape[1] == 128
    assert scores["feature_gap"] == pytest.approx(float((seen["ours"].mean(0) - seen["real"].mean(0)).norm()))
    protocol = scores.protocol["feature_gap"]
    assert protocol["features_sha256"] == file_sha256(WEIGHTS) and "MNIST evaluator" in protocol["features"]
    assert protocol["real_split"] == "test"
    with pytest.raises(Exception, match="Unknown feature space 'mnist_evaluatr'.*mnist_evaluator"):
        feature_space("mnist_evaluatr", None)
