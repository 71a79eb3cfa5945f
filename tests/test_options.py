"""Every option is declared once, in manhole_ssh/options.py: install()'s signature,
Config.build, Limits, the environment variables, the command line and the README's table
are checked against that list, so that none of them can drift."""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import manhole_ssh
from manhole_ssh import config
from manhole_ssh.cli import commands
from manhole_ssh.config import Config, Limits
from manhole_ssh.options import OPTIONS

README = Path(__file__).parents[1] / "README.md"
NAMES = [option.name for option in OPTIONS]


def test_install_takes_every_option_with_its_type_and_default() -> None:
    parameters = inspect.signature(manhole_ssh.install).parameters
    assert list(parameters) == NAMES
    for option in OPTIONS:
        parameter = parameters[option.name]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == option.default, option.name
        assert " ".join(str(parameter.annotation).split()) == option.type, option.name
        assert f":param {option.name}:" in (manhole_ssh.install.__doc__ or ""), option.name


def test_config_build_and_limits_take_each_option_with_its_default() -> None:
    build = inspect.signature(Config.build).parameters
    limits = Limits()
    for option in OPTIONS:
        if option.name in Limits._fields:
            assert getattr(limits, option.name) == option.default, option.name
        else:
            assert build[option.name].default == option.default, option.name
    assert set(build) - {"limits"} | set(Limits._fields) == set(NAMES)


def test_every_option_but_objects_has_an_environment_variable() -> None:
    objects = {option.name for option in OPTIONS if option.environment is None}
    assert objects == {"locals", "loop"}
    variables = config.environment_variables()
    assert variables == [f"MANHOLE_SSH_{name.upper()}" for name in NAMES if name not in objects]


def test_the_command_line_has_the_flags_of_the_table() -> None:
    parser = argparse.ArgumentParser()
    commands._add_server_options(parser)
    flags = {flag for action in parser._actions for flag in action.option_strings} - {
        "-h",
        "--help",
    }
    assert flags == {option.flag for option in OPTIONS if option.flag is not None}


def test_the_readme_table_lists_every_option_with_its_default() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|", README.read_text(), re.MULTILINE)
    table = {name: shown for name, shown in rows if name in NAMES}
    assert set(table) == set(NAMES)
    for option in OPTIONS:
        assert table[option.name] == option.shown_default, option.name
