"""docs/cli.md, generated from the parser itself, so the manual is the --help a user sees.

    python -m bench.cli.docs > docs/cli.md      # regenerate after changing an option

`render_cli_markdown()` walks `build_parser()`: the top-level help, then every command (and
`results`' actions) in the order `artemis --help` lists them, each as its --help text at a
fixed width. tests/bench/test_cli_docs.py checks that docs/cli.md is what it renders.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

WIDTH = 100  # help text is wrapped at this many columns whatever the terminal
REGENERATE = "python -m bench.cli.docs > docs/cli.md"


@contextmanager
def _columns(width: int) -> Iterator[None]:
    """argparse wraps at $COLUMNS (through shutil.get_terminal_size): fix it while rendering."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order --help lists them."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            out += [(name, helps.get(name, ""), p) for name, p in action.choices.items()]
    return out


def _section(level: int, title: str, summary: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"{'#' * level} `{title}`", ""]
    if summary:
        lines += [summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."), ""]
    lines += ["```text", parser.format_help().rstrip(), "```", ""]
    for name, help_, sub in _subcommands(parser):
        lines += _section(level + 1, f"{title} {name}", help_, sub)
    return lines


def render_cli_markdown() -> str:
    """docs/cli.md's text: every command's --help, generated.

    >>> text = render_cli_markdown()
    >>> text.splitlines()[0], "## `artemis layer`" in text, "### `artemis results status`" in text
    ('# The `artemis` command', True, True)
    """
    from . import build_parser

    with _columns(WIDTH):
        parser = build_parser()
        lines = ["# The `artemis` command", "",
                 f"Generated from the parser by `{REGENERATE}`; do not edit by hand. Every option's "
                 "default is shown; errors a user can fix are one line and exit 2, anything else is a bug "
                 "(exit 1, traceback with `artemis -v`).", "",
                 "```text", parser.format_help().rstrip(), "```", ""]
        for name, help_, sub in _subcommands(parser):
            lines += _section(2, f"artemis {name}", help_, sub)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_cli_markdown(), end="")
