"""The options of the experiment commands (`train`, `prune`, `sweep`, `demo`), built from the
one set of defaults: the fields of bench.experiments.cells.TrainCell and PruneCell. A command
names the fields it takes; the flag, type, help and default come from here.

>>> import argparse
>>> p = argparse.ArgumentParser(); add_cell_options(p, "train", ("epochs", "lr"))
>>> p.parse_args([]).epochs == TRAIN_DEFAULTS["epochs"], p.parse_args(["--lr", "0.1"]).lr
(True, 0.1)
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from bench.experiments.cells import PruneCell, TrainCell

from .common import non_negative, positive, positive_float


def _defaults(cls) -> dict:
    return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


TRAIN_DEFAULTS = _defaults(TrainCell)
PRUNE_DEFAULTS = _defaults(PruneCell)


def comma_list(cast, what: str, check=None, expected: str = ""):
    """The one parser of comma-separated options: each item cast (and checked), at least one,
    duplicates dropped in order.

    >>> comma_list(int, "integers")("0,1,1")
    (0, 1)
    >>> comma_list(float, "lambdas", lambda v: v >= 0, ">= 0")("0.3,0.30,3e-1")
    (0.3,)
    """
    def parse(text: str) -> tuple:
        try:
            vals = tuple(cast(t.strip()) for t in text.split(",") if t.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None
        if not vals:
            raise argparse.ArgumentTypeError(f"expected at least one of {what}, got {text!r}")
        bad = [v for v in vals if check is not None and not check(v)]
        if bad:
            raise argparse.ArgumentTypeError(f"{what} must be {expected}, got {', '.join(map(str, bad))}")
        return tuple(dict.fromkeys(vals))
    return parse


def _optional_positive(text: str) -> int | None:
    return None if text.lower() in ("all", "none") else positive(text)


def _optional_non_negative(text: str) -> float | None:
    return None if text.lower() in ("none", "off") else non_negative(text)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "yes", "true", "on"):
        return True
    if text.lower() in ("0", "no", "false", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")


# field -> (type, help) for every option a command can build from the cells' fields
TRAIN_OPTIONS = {
    "subset": (_optional_positive, "training images before the 10%% validation split ('all': every one)"),
    "test_images": (_optional_positive, "test images read at the chosen step ('all': the whole test split)"),
    "epochs": (positive, "the cap on a plain training's epochs (it stops earlier when it converges)"),
    "converge": (_optional_non_negative, "a plain training converges when validation gains less than this many "
                                         "points over 3 epochs (the rate is then cut 10x; the third time it "
                                         "stops); 'none': a cosine schedule over --epochs"),
    "lr": (positive_float, "learning rate of a plain training"),
    "batch_size": (positive, "batch size"),
    "warm_start": (_bool, "a Lasso model starts from the converged plain model of the same seed (yes/no)"),
    "lasso_epochs": (positive_float, "epochs of group-Lasso training from the warm start"),
    "lasso_lr": (positive_float, "learning rate of the group-Lasso training from the warm start"),
    "poly_modulus_degree": (positive, "N whose packing defines the pruning groups"),
}
PRUNE_OPTIONS = {
    "max_drop": (non_negative, "allowed validation accuracy drop from the dense model of the same seed, in points"),
    "recovery_epochs": (positive_float, "fine-tuning epochs at every method's first pruning step"),
    "finetune_epochs": (positive_float, "fine-tuning epochs at every later step (a fraction is allowed)"),
    "finetune_lr": (positive_float, "fine-tuning learning rate"),
    "patience": (positive, "rejected pruning steps in a row that stop a run"),
}
_TABLES = {"train": (TRAIN_OPTIONS, TRAIN_DEFAULTS), "prune": (PRUNE_OPTIONS, PRUNE_DEFAULTS)}


def add_cell_options(p: argparse.ArgumentParser, kind: str, names: tuple[str, ...],
                     overrides: dict[str, tuple[object, str]] | None = None) -> None:
    """Add --<name> for each field of TrainCell (kind "train") or PruneCell ("prune"), with its
    default, or a command's override {name: (default, why)}, whose reason the help then gives."""
    table, defaults = _TABLES[kind]
    overrides = overrides or {}
    for name in names:
        cast, text = table[name]
        default, why = overrides.get(name, (defaults[name], ""))
        if why:
            text += f"; here {default} instead of the sweep's {defaults[name]}: {why}".replace("%", "%%")
        p.add_argument("--" + name.replace("_", "-"), type=cast, default=default, help=text)


def cell_kwargs(args: argparse.Namespace, kind: str) -> dict:
    """The fields of `kind` the command's options set."""
    table, _ = _TABLES[kind]
    return {k: getattr(args, k) for k in table if hasattr(args, k)}

DEFAULT_MODEL = "resnet20"  # every experiment command's default model (the cheapest of the paper's kind)
