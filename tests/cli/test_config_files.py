"""Config files: `ganzoo config MODEL` writes one, `ganzoo run --config FILE` reads it (YAML, TOML, JSON),
flags override it, unknown keys get a suggestion, and a run's config.json repeats the run."""

import json

import pytest
import yaml

from ganzoo.checkpoint import read_tensors
from ganzoo.cli import main
from ganzoo.config import FIELDS, read_config_file
from ganzoo.plugins import registries
from ganzoo.registry import Entry
from ganzoo import GanzooError, ModelSpec

TINY = {"data": "fake", "batch_size": 256, "g_width": 4, "d_width": 4, "z_dim": 8, "epochs": 1, "device": "cpu",
        "samples": 4}


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def saved_config(run_dir):
    return json.loads((run_dir / "config.json").read_text())


def test_template_lists_every_field_with_its_help_and_reads_back(capsys, tmp_path):
    code, text, err = run_cli(capsys, "config", "dcgan")
    assert code == 0, err
    data = yaml.safe_load(text)
    assert list(data) == list(FIELDS)                          # every field, in declaration order
    assert data["generator"] == "dcgan" and data["loss"] == "nonsaturating" and data["lr"] == 2e-4
    for name, info in FIELDS.items():
        if info.flag:
            assert f"# {info.flag}: {info.help(default=data[name] if data[name] is not None else info.default)}" \
                in text, name
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert read_config_file(path) == {k: v for k, v in data.items() if v is not None or FIELDS[k].optional}


def test_a_template_leaves_auto_decided_settings_on_auto(capsys, tmp_path, monkeypatch):
    """`ganzoo config dcgan > run.yaml; ganzoo run --config run.yaml` decides channels-last as a plain run does:
    on a CPU where --precision auto picks bf16, both train channels-last (the template must not write false)."""
    import ganzoo.device
    from ganzoo.resolve import make_config

    monkeypatch.setattr(ganzoo.device, "cpu_has_native_bf16", lambda: True)     # a CPU with matrix units
    code, text, err = run_cli(capsys, "config", "dcgan")
    assert code == 0, err
    path = tmp_path / "run.yaml"
    path.write_text(text)
    settings = read_config_file(path)
    settings.pop("model")
    from_file = make_config("dcgan", {**settings, "device": "cpu"})
    plain = make_config("dcgan", {"device": "cpu"})
    assert plain.precision == "bf16" and plain.channels_last
    assert from_file.precision == plain.precision and from_file.channels_last == plain.channels_last


def test_config_shows_the_models_own_defaults(capsys):
    """`ganzoo config wgangp`: each comment's default is the value below it (wgangp's lr 1e-4, n_critic 5)."""
    code, text, err = run_cli(capsys, "config", "wgangp")
    assert code == 0, err
    lines = text.splitlines()
    above = {line.split(":")[0]: lines[i - 1] for i, line in enumerate(lines) if line and not line.startswith("#")}
    assert yaml.safe_load(text)["lr"] == 1e-4 and "(default 0.0001)" in above["lr"]
    assert yaml.safe_load(text)["n_critic"] == 5 and "(default 5)" in above["n_critic"]
    assert "0.0002" not in above["lr"]


def test_round_trip_through_config_and_a_runs_config_json(capsys, tmp_path, one_thread):
    """`ganzoo config` -> edit -> `ganzoo run --config`; then the run's config.json repeats it, bit for bit."""
    code, text, _ = run_cli(capsys, "config", "dcgan")
    data = yaml.safe_load(text)
    data.update(TINY, lr=1e-3, out=str(tmp_path / "first"))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(data))
    code, _, err = run_cli(capsys, "run", "--config", tmp_path / "run.yaml")
    assert code == 0, err
    first = saved_config(tmp_path / "first")
    assert first["lr"] == 1e-3 and first["batch_size"] == 256 and first["image_size"] == 32 and first["channels"] == 1

    code, _, err = run_cli(capsys, "run", "--config", tmp_path / "first" / "config.json")
    assert code == 0, err
    assert f"{tmp_path / 'first'} holds a run already; this one goes to {tmp_path / 'first-2'}" in " ".join(err.split())
    again = saved_config(tmp_path / "first-2")
    assert again == {**first, "out": str(tmp_path / "first-2")}
    weights = [read_tensors(tmp_path / name / "dcgan.safetensors")[0] for name in ("first", "first-2")]
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])       # the same run, repeated


def test_flags_override_the_file_which_overrides_the_model(capsys, tmp_path, monkeypatch):
    with registries().models.temporary(Entry(
            "tuned", ModelSpec("dcgan", "dcgan", "nonsaturating", defaults={"lr": 5e-5, "beta2": 0.9, "z_dim": 12}),
            "test model", "tests", {})):
        path = tmp_path / "run.yaml"
        path.write_text("model: tuned\n" + yaml.safe_dump({**TINY, "lr": "1e-3", "z_dim": 8}) + "budget: 1h\n")
        code, _, err = run_cli(capsys, "run", "--config", path, "--z-dim", "6", "--out", tmp_path / "run")
        assert code == 0, err
        saved = saved_config(tmp_path / "run")
        assert saved["model"] == "tuned"
        assert saved["z_dim"] == 6                  # flag over file over model
        assert saved["lr"] == 1e-3                  # file over model; "1e-3" is a string to YAML, read as --lr reads it
        assert saved["beta2"] == 0.9                # the model's own default, untouched by the file
        assert saved["beta1"] == 0.5                # RunConfig's default
        assert saved["budget"] == 3600.0 and saved["epochs"] == 1   # the file names epochs: it stays


def test_a_budget_alone_means_no_epoch_limit_and_is_saved_as_null(capsys, tmp_path):
    path = tmp_path / "run.toml"
    settings = {k: v for k, v in TINY.items() if k != "epochs"}
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()) + 'budget = "2s"\n')
    code, _, err = run_cli(capsys, "run", "dcgan", "--config", path, "--out", tmp_path / "run")
    assert code == 0, err
    assert saved_config(tmp_path / "run")["epochs"] is None          # not the internal sentinel
    assert "until the budget ends" in err and "1000000" not in err


@pytest.mark.parametrize("text,message", [
    ("batchsize: 64\n", "sets 'batchsize', which is no run setting. Did you mean 'batch_size'?"),
    ("learnin_rate: 0.1\n", "sets 'learnin_rate', which is no run setting."),
    ("lr: -1\n", "--lr must be a positive number, got -1.0."),
    ("lr: fast\n", "--lr must be a number, got 'fast'."),
    ("epochs: [1, 2]\n", "--epochs must be an integer, got [1, 2]."),
    ("- lr\n", "must hold settings as `name: value` lines"),
    ("lr: [\n", "is not a readable YAML file"),
])
def test_bad_config_files_get_one_sentence(capsys, tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    code, _, err = run_cli(capsys, "run", "dcgan", "--config", path)
    assert code == 1 and message in " ".join(err.split()), err
    assert len(err.strip().splitlines()) == 1


def test_hyphenated_keys_and_json(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"batch-size": 64, "channels-last": True, "budget": 90}))
    assert read_config_file(path) == {"batch_size": 64, "channels_last": True, "budget": 90.0}
    with pytest.raises(GanzooError, match="No config file at"):
        read_config_file(tmp_path / "missing.yaml")


def test_a_budget_flag_over_a_files_epochs_says_what_it_does(capsys, tmp_path, monkeypatch):
    """--budget replaces a config file's epochs (the budget alone says when to stop): said in a line, never
    silently; --epochs as well keeps both."""
    import ganzoo.run

    trained = []
    monkeypatch.setattr(ganzoo.run, "train", lambda config, **kwargs: trained.append(config))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**TINY, "epochs": 7, "out": str(tmp_path / "run")}))
    code, _, err = run_cli(capsys, "run", "dcgan", "--config", path, "--budget", "5m")
    assert code == 0, err
    err = " ".join(err.split())
    assert trained[-1].budget == 300 and trained[-1].epochs >= 10 ** 6
    assert "--budget 300s replaces the config file's epochs (7)" in err and "--epochs N as well" in err
    code, _, err = run_cli(capsys, "run", "dcgan", "--config", path, "--budget", "5m", "--epochs", "3")
    assert code == 0 and trained[-1].epochs == 3 and "replaces" not in err
