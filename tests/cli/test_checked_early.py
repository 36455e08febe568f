"""Checks that used to come too late, now made before a run starts: option values against the factory's
declared types, compare's FID weights and report folder, and what a run that failed before its first
checkpoint leaves behind (nothing that blocks the same command, no advice of a --resume that is refused)."""

import pytest

from helpers import run_cli

TINY = ["--data", "fake", "--image-size", "16", "--batch-size", "8", "--g-width", "8", "--d-width", "8",
        "--z-dim", "4", "--samples", "4", "--device", "cpu", "--threads", "1", "--epochs", "1"]


@pytest.mark.parametrize("value, shown", [("abc", '"abc"'), ("null", "null"), ("true", "true"), ('"0.9"', '"0.9"'),
                                          ("[1]", "[1]")])
def test_an_option_value_of_the_wrong_type_is_refused_before_the_run(tmp_path, capsys, value, shown):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "run", "dcgan", *TINY, "--options", f"loss.real_label={value}", "--out", out)
    assert code == 1
    assert err.strip() == (f"error: The loss 'nonsaturating' takes a number for its option 'real_label', "
                           f"got {shown}.")
    assert not out.exists()                                  # nothing blocks the fixed command


def test_an_option_of_the_right_type_runs(tmp_path, capsys):
    from ganzoo.contracts import check_option_values

    def factory(a: float = 1.0, n: int = 2, flag: bool = False, name: str | None = None, untyped=3):
        return None

    check_option_values("loss", "f", factory, {"a": 1, "n": 3, "flag": True, "name": None, "untyped": 0.5})
    for options, wanted in [({"a": "x"}, "a number"), ({"n": 1.5}, "a whole number"), ({"flag": 1}, "true or false"),
                            ({"name": 3}, "text or null"), ({"untyped": "x"}, "a number"), ({"a": None}, "a number")]:
        with pytest.raises(Exception, match=f"takes {wanted} for its option"):
            check_option_values("loss", "f", factory, options)


@pytest.mark.parametrize("label, name", [
    ("compare-dcgan-basicgan-../somewhere", "compare-dcgan-basicgan-_somewhere"),
    ("compare-a-/abs/path/data", "compare-a-_abs_path_data"),
    ("compare-a\nb-mnist", "compare-a_b-mnist"),
    ("compare-" + b"\xff\xfe".decode(errors="surrogateescape") + "-mnist", "compare-_-mnist"),
    ("../..", "compare"),
], ids=["relative path", "absolute path", "newline", "bytes not UTF-8", "only dots"])
def test_a_report_folder_name_is_one_sanitised_name(label, name):
    from ganzoo.compare.comparison import folder_name

    assert folder_name(label) == name


def test_compare_never_writes_into_a_data_folder_named_by_a_relative_path(tmp_path, monkeypatch, capsys):
    """`compare --data ../somewhere`: the report goes to reports/<one name> under the working folder; the FID
    weights are checked before anything trains, so a missing file stops it with nothing written at all."""
    data, work = tmp_path / "somewhere", tmp_path / "work"
    data.mkdir()
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("GANZOO_INCEPTION_WEIGHTS", str(tmp_path / "no-such-weights.safetensors"))
    code, _, err = run_cli(capsys, "compare", "basicgan", "dcgan", "--data", "../somewhere", "--metrics", "fid",
                           "--device", "cpu")
    assert code == 1 and "Traceback" not in err
    assert "Inception" in err
    assert list(data.iterdir()) == [] and list(work.iterdir()) == []
