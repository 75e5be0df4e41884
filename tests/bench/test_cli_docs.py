"""docs/cli.md is the parser's own --help, and every --help states its defaults."""

import argparse
from pathlib import Path

from bench.cli import build_parser
from bench.cli.docs import REGENERATE, _subcommands, render_cli_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_cli_md_is_current():
    assert (ROOT / "docs" / "cli.md").read_text() == render_cli_markdown(), \
        f"docs/cli.md is stale: regenerate it with `{REGENERATE}`"


def _parsers(parser, title="artemis"):
    yield title, parser
    for name, _, sub in _subcommands(parser):
        yield from _parsers(sub, f"{title} {name}")


def test_every_help_shows_its_defaults():
    for title, parser in _parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
                assert "default" in formatter._get_help_string(action).lower(), \
                    f"{title} --help: {action.option_strings[-1]} does not show its default"


def test_every_schedule_option_shows_its_choices():
    shown = {title: a.metavar for title, parser in _parsers(build_parser()) for a in parser._actions
             if a.dest == "schedule"}
    assert "artemis sweep" in shown and "artemis layer" in shown
    assert all(m and m.startswith("{output-rotation,") for m in shown.values()), shown
