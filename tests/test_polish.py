"""The same facts shown once and right: the settings table, the eval table at 80 columns, --out suffixes."""

import json

from rich.console import Console

from ganzoo.cli import main
from ganzoo.evaluate import metrics_table
from ganzoo.plugins import registries

TINY = ["--data", "fake", "--batch-size", "256", "--g-width", "4", "--d-width", "4", "--z-dim", "8", "--device", "cpu"]


def test_a_run_shows_what_differs_from_the_defaults_once(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert main(["run", "dcgan", *TINY, "--epochs", "1", "--lr", "1e-3", "--out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    precision = json.loads((out / "config.json").read_text())["precision"]   # auto: fp32, or bf16 on a bf16 CPU
    assert precision in ("fp32", "bf16")
    assert f"run: dcgan on fake, 1 epoch, {precision} -> {out} (every setting in {out / 'config.json'})" in err
    assert "lr 0.001 (default 0.0002)" in err and "batch_size 256 (default 128)" in err
    for same in ("beta1", "beta2", "seed", "latent", "on_divergence", "image_size"):
        assert same not in err, same                       # at its default: only in config.json
    assert main(["run", "--resume", str(out), "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "settings besides" not in err and "resuming" in err      # compare's later segments resume too


def test_eval_table_keeps_every_metric_name_whole_at_80_columns():
    names = [n for entry in registries().metrics for n in (entry.info.get("better") or {})]
    scores = {name: 1234.5678 for name in names}
    console = Console(width=80, record=True)
    console.print(metrics_table({"dcgan.safetensors": scores, "real data (train)": scores}, "t"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for name in names:
        assert name in text, name


def test_interpolate_out_without_a_suffix_gets_one(tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    assert main(["run", "dcgan", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    assert main(["interpolate", str(run), "--rows", "1", "--steps", "3", "--out", str(tmp_path / "walks" / "interp")]) == 0
    assert sorted(p.name for p in (tmp_path / "walks").iterdir()) == ["interp.gif", "interp.png"]
