"""The `artemis` command line: one module per command, the only place that prints.

    artemis layer --c-in 64 --c-out 64 --hw 16 --kernel 3 [--json]
    artemis infer --model resnet18 --input-size 16 --images 2 [--mode encrypted|plain|count] [--json]
    artemis infer --checkpoint runs/artemis/pruned-artemis-diagonal.pt --images 100
    artemis train --model resnet18 --dataset fashion-mnist --input-size 16 --lambda-d 1e-4 --out DIR
    artemis prune --method artemis-diagonal --checkpoint DIR/model.pt --max-drop 1.0 --out DIR
    artemis sweep --models resnet20 --methods dense,hunter,artemis-diagonal --seeds 0,1,2 --lambdas-d 0.02,0.05
    artemis results export
    artemis report [run.json ...] [--pruning-csv CSV ...] [--readme README.md]
    artemis demo

Errors: an `InputError` (something the user gave) or an OSError naming a path is one line and
exit 2; any other exception is a bug, one line and exit 1, with its traceback under `-v`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import traceback
from typing import Sequence

from heconv.errors import InputError

from ..results import clean_stale, outputs_together
from . import bench, demo, infer, layer, prune, report, results, sweep, train
from .common import RESULTS, ROOT, check_output_paths

COMMANDS = (layer, infer, report, train, prune, sweep, results, demo, bench)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help already states it or there is
    none (a flag, or a default of None that the help explains)."""

    @staticmethod
    def _default(action: argparse.Action) -> str | None:
        d = action.default
        if not action.option_strings or action.nargs == 0 or d is None or d is argparse.SUPPRESS:
            return None
        if isinstance(d, bool):  # an option that takes yes/no (a flag has nargs 0 and shows none)
            return "yes" if d else "no"
        if isinstance(d, (tuple, list)):
            return ",".join(map(str, d))
        return str(d).replace(f"{ROOT}/", "")  # a path in the repository reads the same on every machine

    def _get_help_string(self, action: argparse.Action) -> str:
        text, default = action.help or "", self._default(action)
        if default is None or "default" in text.lower():
            return text
        return (text + " " if text else "") + f"(default: {default.replace('%', '%%')})"

    def _format_action(self, action: argparse.Action) -> str:
        if not action.help and self._default(action) is not None:  # argparse prints no help line for these
            action = copy.copy(action)
            action.help = self._get_help_string(action)
        return super()._format_action(action)


class _Parser(argparse.ArgumentParser):
    """A bad option is one line on stderr naming it and what was expected, and exit 2; a missing
    command also prints the usage line. Every --help shows the defaults (`_HelpFormatter`); the
    subcommands' parsers are of this class too (argparse makes them with the parent's class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        if message.startswith("the following arguments are required: command") or \
                message.startswith("the following arguments are required: action"):
            self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="artemis", description="Encrypted-inference benchmark suite (CKKS, HE-aware pruning).")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details; an internal error prints its traceback")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # a bad option (2, already said in one line) or --help (0)
        return int(e.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        clean_stale(*check_output_paths(args), RESULTS)
        with outputs_together():  # a command's files appear together, or none of them
            result = args.func(args)
    except (InputError, MemoryError, FloatingPointError) as e:  # numpy's MemoryError names the size;
        # FloatingPointError: a training that diverged (a smaller --lr or lambda)
        print(f"artemis {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:  # not about a path the user named: a bug or the machine, not bad input
            return _internal_error(args, e)
        print(f"artemis {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"artemis {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # anything else is a bug: say so in one line, the traceback under -v
        return _internal_error(args, e)
    if getattr(args, "json", False) or args.render is None:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))
    else:
        print(args.render(result))
    if result.get("_error"):  # the command ran but did not succeed (e.g. sweep cells failed)
        print(f"artemis {args.command}: error: {result['_error']}", file=sys.stderr)
        return 1
    if result.get("within_tolerance") is False:
        print(f"artemis {args.command}: error: the result is outside the tolerance: "
              f"error {result['max_abs_error']:.3e} against PyTorch, limit {result['error_limit']:.3e}"
              + (f", top-1 agreement {result['top1_agreement']:.2f}" if "top1_agreement" in result else ""),
              file=sys.stderr)
        return 1
    return 0


def _internal_error(args: argparse.Namespace, e: BaseException) -> int:
    """A bug, not bad input: one line naming the exception (the traceback too with -v), exit 1."""
    if args.verbose:
        traceback.print_exception(e, file=sys.stderr)
    first = (str(e).splitlines() or [""])[0]
    hint = "" if args.verbose else " (run with -v for the traceback)"
    print(f"artemis {args.command}: internal error: {type(e).__name__}: {first}{hint}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
