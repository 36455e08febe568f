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
