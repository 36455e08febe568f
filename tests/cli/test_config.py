"""RunConfig's field declarations generate the flags, their help, the checks and the field sets."""

import dataclasses
import re

import pytest
import torch

from ganzoo import GanzooError, RunConfig
from ganzoo.cli import build_parser
from ganzoo.config import COMPARABLE, FIELDS, RESUMABLE, format_value


def subparser(name):
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices[name]


def flag_help(parser) -> dict[str, str]:
    """Flag -> help text, as `--help` prints it (one line per flag, whitespace normalised)."""
    return {option: " ".join((action.help or "").split()) for action in parser._actions
            for option in action.option_strings if option.startswith("--") and not option.startswith("--no-")}


def test_every_field_has_a_flag_and_help_showing_its_real_default():
    helps = flag_help(subparser("run"))
    text = " ".join(subparser("run").format_help().split())
    for name, info in FIELDS.items():
        if name == "model":                                   # the positional MODEL argument
            assert info.flag is None
            continue
        assert info.flag in helps, f"{name} has no flag on `ganzoo run`"
        help_ = helps[info.flag]
        assert len(info.setting.help) > 5, name
        default = format_value(RunConfig().__getattribute__(name), name)
        shown = info.setting.shown_default or default
        assert help_.endswith(f"(default{':' if info.setting.shown_default else ''} {shown})"), (name, help_)
        if info.setting.shown_default is None:
            # the number in the help is the dataclass's default, not a copy that can drift
            assert f"(default {default})" in text
        assert info.flag in text


def test_help_follows_the_declared_default(monkeypatch):
    """Change a default in one place: the help changes with it."""
    info = FIELDS["batch_size"]
    monkeypatch.setitem(FIELDS, "batch_size", dataclasses.replace(info, default=96))
    assert flag_help(subparser("run"))["--batch-size"] == "images per step (default 96)"


def test_compare_gets_the_comparable_flags_only():
    helps = flag_help(subparser("compare"))
    for name, info in FIELDS.items():
        if name in COMPARABLE:
            assert helps[info.flag].startswith(info.setting.help + ", the same for every model"), name
    assert "--lr" not in helps and "--generator" not in helps
    assert {"split", "batch_size", "image_size", "channels", "z_dim", "g_width", "d_width", "precision",
            "log_every", "threads"} == COMPARABLE


# What a resumed run may change: where and how it runs, how long, what it logs; never what it learns (pinned,
# as COMPARABLE is: making a recipe field resumable is a decision this line has to be changed for)
PINNED_RESUMABLE = {"epochs", "budget", "device", "precision", "log_every", "checkpoint_every", "on_divergence",
                    "compile", "channels_last", "eval_every", "eval_n", "threads", "metrics", "memory_budget",
                    "loggers", "tensorboard", "sync_bn", "collective_timeout"}


def test_resumable_set_is_pinned_and_is_what_a_resumed_run_accepts():
    from ganzoo.resolve import make_config, resumed_config

    assert RESUMABLE == PINNED_RESUMABLE
    # what resuming does: a recipe field is refused, with the list of those that may change...
    with pytest.raises(GanzooError) as refused:
        resumed_config(make_config("dcgan", {"data": "fake"}), {"lr": 0.1, "epochs": None}, "run")
    allowed = str(refused.value).split("only ")[1].split(" may change")[0].split(", ")
    assert allowed == sorted(FIELDS[name].flag for name in PINNED_RESUMABLE)
    assert "(got --lr)" in str(refused.value)
    # ...and one that may change, changes
    config = resumed_config(make_config("dcgan", {"data": "fake"}), {"eval_n": 123, "lr": None}, "run")
    assert config.eval_n == 123


@pytest.mark.parametrize("name,value,message", [
    ("epochs", 0, "--epochs must be a positive integer, got 0."),
    ("eval_n", -2, "--eval-n must be a positive integer, got -2."),
    ("lr", float("nan"), "--lr must be a positive number, got nan."),
    ("beta2", 1.0, "Adam betas must lie in [0, 1), got --beta2 1.0."),
    ("latent", "cauchy", "--latent must be 'normal' or 'uniform', got 'cauchy'."),
    ("precision", "fp8", "--precision must be auto, fp32, bf16 or fp16, got 'fp8'."),
    ("samples", 2000, "--samples must be at most 1024, got 2000."),
    ("compile", 1, "--compile must be true or false, got 1."),
    ("z_dim", True, "--z-dim must be an integer, got True."),
    ("data", "a\0b", "--data holds a NUL character"),
    ("memory_budget", -1, "--memory-budget must be a size such as 512M or 8G, got -1."),
    ("split", " ", "--split must name a split of the dataset, got ' '."),
])
def test_validation_names_the_flag(name, value, message):
    config = RunConfig(**{name: value})
    with pytest.raises(GanzooError) as excinfo:
        config.validate()
    assert message in str(excinfo.value)


def test_every_flag_parses_to_its_field_type():
    """A value typed on the command line arrives as the field's type (bool flags as --x/--no-x)."""
    parser = build_parser()
    argv = ["run", "dcgan"]
    expected = {}
    for name, info in FIELDS.items():
        if info.flag is None:
            continue
        if info.type is bool:
            argv.append(info.flag)
            expected[name] = True
        else:
            text = {"budget": "2m", "data_dir": "x", "precision": "bf16", "latent": "uniform",
                    "on_divergence": "rollback", "memory_budget": "8G", "options": "loss.a=-1"}.get(name, "3" if info.type in (int, float) else "abc")
            argv += [info.flag, text]
            expected[name] = info.parse(text)
    args = parser.parse_args(argv)
    for name, value in expected.items():
        assert getattr(args, name) == value and type(getattr(args, name)) is type(value), name
    assert expected["budget"] == 120.0


def test_resume_refuses_a_fixed_field_by_its_flag(tmp_path, capsys):
    from ganzoo.cli import main

    out = tmp_path / "run"
    assert main(["run", "basicgan", "--data", "fake", "--batch-size", "256", "--g-width", "4", "--d-width", "4",
                 "--epochs", "1", "--out", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(out), "--z-dim", "8", "--data", "mnist"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"keeps its config; only .*--epochs.* may change \(got --data, --z-dim\)", " ".join(err.split()))


@pytest.mark.parametrize("native,given,precision,channels_last", [
    (True, {}, "bf16", True),                                   # a CPU with AVX512-BF16 or AMX
    (True, {"channels_last": False}, "bf16", False),            # --no-channels-last is kept
    (True, {"precision": "fp32"}, "fp32", False),               # an explicit choice is kept
    (False, {}, "fp32", False),                                 # any other CPU
])
def test_precision_auto_is_decided_and_recorded(monkeypatch, native, given, precision, channels_last):
    import ganzoo.device
    from ganzoo.run import make_config
    from ganzoo.train import Trainer
    from ganzoo.data import load_dataset

    monkeypatch.setattr(ganzoo.device, "cpu_has_native_bf16", lambda: native)
    config = make_config("dcgan", {"data": "fake", "device": "cpu", "g_width": 4, "d_width": 4, **given})
    assert (config.precision, config.channels_last) == (precision, channels_last)
    trainer = Trainer(config, load_dataset("fake", root=None, split="train", image_size=32, channels=1))
    assert trainer.precision.name == precision
    assert trainer.G.net[0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_native_bf16_is_read_from_the_cpu_flags(monkeypatch, tmp_path):
    import ganzoo.device

    for flags, expected in (("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("amx_bf16 amx_tile", True)):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(ganzoo.device, "Path", lambda _: cpuinfo)
        ganzoo.device.cpu_has_native_bf16.cache_clear()
        assert ganzoo.device.cpu_has_native_bf16() is expected
    ganzoo.device.cpu_has_native_bf16.cache_clear()
