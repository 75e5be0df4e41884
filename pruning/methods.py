"""The registry of pruning methods (each a PruningMethod, in the manner of torch.nn.utils.prune's
BasePruningMethod), as masks kept beside the weights and folded in at export.

A method names its prunable units and scores them; the units with the smallest scores go
first, either below one global threshold (the paper's procedure: `threshold_masks`) or as
a fraction of each conv's units (`masks`):

    method              units (score)                                  trained with
    dense               none                                           no Lasso
    unstructured        single weights (|w|)                           no Lasso
    hunter              plaintexts, diagonal and positional groups     no Lasso
                        (squared norm per second the engine saves)
    hunter-<s>-<u>      Hunter's variants: scoring s (rms, layer-rms,  no Lasso
                        energy-per-s, rms-per-rot) x units u (all,
                        groups = diagonal + positional, diag)
    hunter-plaintext    whole plaintexts M[bo, bi, d, pos] (RMS)       no Lasso
    diagonal-no-lasso   diagonal groups (RMS)                          no Lasso (the ablation)
    artemis-diagonal    diagonal groups (bo, d) (RMS)                  lambda_d
    artemis-positional  positional groups (bi, pos) (RMS)              lambda_p
    artemis-both        both kinds (RMS)                               lambda_p and lambda_d
    coefficient-block   the coefficient algorithm's kernel blocks       no Lasso
                        (output group, input chunk) (RMS)

The base class and the simple methods are in pruning/method_base.py, Hunter's family in
pruning/hunter.py; this module holds the registry. Under a BSGS schedule the diagonal/positional
slots hold its giant/baby-step groups.

`method_masks` and `method_threshold_masks` are the thin functional wrappers.
"""

from __future__ import annotations

import torch
from torch import nn

from heconv.errors import InputError

from .groups import LayerGroups
from .hunter import Hunter, hunter_variants
from .masks import effective_weight
from .method_base import CoefficientBlock, Dense, GroupPruning, Masks, PruningMethod, Unstructured

# hunter-plaintext and diagonal-no-lasso are readings of Hunter too (plaintexts alone; diagonal
# groups alone by RMS): as members of its family, the best Hunter on validation is never weaker.
_ALL = [Dense(), Unstructured(), Hunter(), *hunter_variants(), GroupPruning("hunter-plaintext", ("plaintext",),
                                                                            family="hunter"),
        GroupPruning("diagonal-no-lasso", ("diagonal",), family="hunter"),
        GroupPruning("artemis-diagonal", ("diagonal",), ("d",)),
        # The Lasso model at the dense model's weight scale (pruning.rescale): a member of the family, so the
        # artemis-diagonal of the verdicts is the better of the two on validation.
        GroupPruning("artemis-diagonal-rescaled", ("diagonal",), ("d",), family="artemis-diagonal", rescale=True),
        # The Lasso trained with each conv's weight scale held (pruning.train, "proximal-held"): the penalty
        # moves weight between groups instead of shrinking the free scale.
        GroupPruning("artemis-diagonal-held", ("diagonal",), ("d",), family="artemis-diagonal",
                     training="proximal-held"),
        GroupPruning("artemis-positional", ("positional",), ("p",)),
        GroupPruning("artemis-both", ("diagonal", "positional"), ("p", "d")), CoefficientBlock()]
REGISTRY: dict[str, PruningMethod] = {m.name: m for m in _ALL}
METHODS = tuple(REGISTRY)


def family_members(family: str) -> tuple[str, ...]:
    """The methods of a family (a method alone is its own family).

    >>> family_members("artemis-positional"), "diagonal-no-lasso" in family_members("hunter")
    (('artemis-positional',), True)
    >>> family_members("artemis-diagonal")
    ('artemis-diagonal', 'artemis-diagonal-rescaled', 'artemis-diagonal-held')
    """
    return tuple(m.name for m in _ALL if m.family == family)


def get_method(name: str) -> PruningMethod:
    if name not in REGISTRY:
        raise InputError(f"unknown pruning method {name!r}; known: {', '.join(METHODS)}")
    return REGISTRY[name]


def current_weights(model: nn.Module, groups: dict[str, LayerGroups]) -> dict[str, torch.Tensor]:
    """The effective (masked) weight of every conv in `groups`, detached."""
    modules = dict(model.named_modules())
    return {path: effective_weight(modules[path]).detach() for path in groups}


def method_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str, fraction: float) -> Masks:
    """The mask of every conv for `method` at `fraction` per conv (computed from the current weights)."""
    return get_method(method).masks(current_weights(model, groups), groups, fraction)


def method_threshold_masks(model: nn.Module, groups: dict[str, LayerGroups], method: str,
                           threshold: float) -> Masks:
    """The mask of every conv for `method` at one global `threshold` on its unit scores."""
    return get_method(method).threshold_masks(current_weights(model, groups), groups, threshold)
