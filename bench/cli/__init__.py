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
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Sequence

from ..results import clean_stale, outputs_together
from . import bench, demo, infer, layer, prune, report, results, sweep, train
from .common import RESULTS, check_output_paths

COMMANDS = (layer, infer, report, train, prune, sweep, results, demo, bench)


class _Parser(argparse.ArgumentParser):
    """A bad option is one line on stderr naming it and what was expected, and exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="artemis",
                                     description="Encrypted-inference benchmark suite (CKKS, HE-aware pruning).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
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
    except (ValueError, PermissionError, MemoryError, FloatingPointError) as e:  # numpy's MemoryError names the
        # size; FloatingPointError: a training that diverged (a smaller --lr or lambda)
        print(f"artemis {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"artemis {args.command}: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False) or args.render is None:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}))
    else:
        print(args.render(result))
    if result.get("_error"):  # the command ran but did not succeed (e.g. sweep cells failed)
        print(f"artemis {args.command}: error: {result['_error']}", file=sys.stderr)
        return 1
    if result.get("within_tolerance") is False:
        print(f"artemis {args.command}: error: the result is outside the tolerance: error {result['max_abs_error']:.3e} "
              f"against PyTorch, limit {result['error_limit']:.3e}"
              + (f", top-1 agreement {result['top1_agreement']:.2f}" if "top1_agreement" in result else ""),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
