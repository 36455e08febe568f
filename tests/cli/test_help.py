"""Every command has a description and every flag its help, and help offers only what a command uses."""



from ganzoo.cli import build_parser

from helpers import TINY as TINY_FLAGS

TINY = [*TINY_FLAGS, "--log-every", "4"]


def test_every_command_has_a_description_and_every_flag_help():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = []
    for name, sub in commands.items():
        if not sub.description:
            missing.append(f"{name}: no description")
        for action in sub._actions:
            if action.dest != "help" and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, missing
    assert "--seed" not in commands["filters"].format_help()                # filters draws no samples
    assert "random pairs" not in commands["interpolate"].format_help()


def test_run_help_for_a_named_model_shows_that_models_defaults(capsys):
    """`ganzoo run wgangp --help` shows wgangp's lr 1e-4 and n-critic 5, `ganzoo run --help` RunConfig's."""
    import re

    import pytest

    from ganzoo.cli import main

    def help_of(*argv):
        with pytest.raises(SystemExit):
            main(list(argv))
        return capsys.readouterr().out

    def default(text, flag):           # the flag's own entry: from its line to the next flag's
        entry = re.search(r"^  " + re.escape(flag) + r" .*?(?=^  -)", text, re.M | re.S).group(0)
        return re.search(r"\(default:? ([^)]*)\)", " ".join(entry.split())).group(1)

    wgangp, plain = help_of("run", "wgangp", "--help"), help_of("run", "--help")
    assert default(wgangp, "--lr") == "0.0001" and default(wgangp, "--n-critic") == "5"
    assert default(plain, "--lr") == "0.0002" and default(plain, "--n-critic") == "1"


def test_compare_epochs_help_says_how_its_default_differs_from_runs(capsys):
    import pytest

    from ganzoo.cli import main
    from ganzoo.config import FIELDS

    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    run_default = FIELDS["epochs"].default
    assert f"(default: 1, unlike `ganzoo run`'s {run_default}" in text and f"--epochs {run_default} compares" in text


def test_no_empty_default_and_the_budget_with_its_unit():
    """No help or settings table shows `(default )`; a budget reads with its unit; --eval-every's help names N."""
    import io

    from ganzoo.cli import build_parser
    from ganzoo.config import FIELDS
    from ganzoo.resolve import make_config
    from ganzoo.run import show_config
    from ganzoo.runfiles import RunFiles
    from ganzoo.terminal import Console

    commands = build_parser()._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        text = " ".join(sub.format_help().split())
        assert "(default )" not in text and "(default: )" not in text, name
    assert "--eval-every N evaluate with the dataset's metrics every N epochs" in \
        " ".join(commands["run"].format_help().split())

    config = make_config("dcgan", {"augment": "translation", "budget": 300.0, "device": "cpu"})
    buffer = io.StringIO()
    show_config(config, Console(file=buffer, width=200), RunFiles("runs/x"), {"augment": "translation",
                                                                              "budget": 300.0})
    table = buffer.getvalue()
    assert "(default )" not in table and "augment  translation (default none)" in " ".join(table.split()) or \
        "augment translation (default none)" in " ".join(table.split()), table
    assert "budget 300s (default none)" in " ".join(table.split()), table
    assert FIELDS["budget"].shown(90.0) == "90s"
