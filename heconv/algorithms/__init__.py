"""The registry of convolution algorithms: the one place that names them.

Each algorithm implements `heconv.algorithms.base.ConvAlgorithm` (plan, compile, run, input and output
`Layout`, predicted counts, pruning groups). Adding one is a folder and one line here.

>>> algorithm_names()
('slot', 'coefficient', 'matvec', 'coefficient-rescale')
>>> get_algorithm("winograd")
Traceback (most recent call last):
...
heconv.errors.InputError: unknown conv algorithm 'winograd'; known: slot, coefficient, matvec, coefficient-rescale
"""

from __future__ import annotations

from ..errors import InputError
from .base import ConvAlgorithm, GroupArray, LayerRun, run_layer
from .coefficient import CoefficientAlgorithm, RescaledCoefficientAlgorithm
from .layout import CoeffLayout, Layout, SlotLayout, decrypt_map, encrypt_map
from .matvec import ComplexLayout, MatvecAlgorithm, MultiplexedLayout
from .slot import SlotAlgorithm

ALGORITHMS: dict[str, ConvAlgorithm] = {
    "slot": SlotAlgorithm(),
    "coefficient": CoefficientAlgorithm(),
    "matvec": MatvecAlgorithm(),
    "coefficient-rescale": RescaledCoefficientAlgorithm(),
}

DEFAULT_ALGORITHM: str = next(iter(ALGORITHMS))  # the first registered (the slot engine): every default


def algorithm_names() -> tuple[str, ...]:
    """The registered names, in registration order (the CLI's choices)."""
    return tuple(ALGORITHMS)


def get_algorithm(name: str) -> ConvAlgorithm:
    """The algorithm registered as `name`; an InputError naming the known ones otherwise."""
    try:
        return ALGORITHMS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown conv algorithm {name!r}; known: {', '.join(ALGORITHMS)}") from None


def algorithm_name(algorithm: ConvAlgorithm) -> str:
    """The name `algorithm` is registered under."""
    name = next((n for n, a in ALGORITHMS.items() if a is algorithm), None)
    if name is None:
        raise ValueError(f"{type(algorithm).__name__} instance is not registered in heconv.algorithms.ALGORITHMS "
                         f"(ask get_algorithm for the registered one)")
    return name


__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "ConvAlgorithm", "GroupArray", "LayerRun", "Layout", "SlotLayout",
           "MultiplexedLayout", "ComplexLayout",
           "CoeffLayout", "algorithm_name", "algorithm_names", "decrypt_map", "encrypt_map", "get_algorithm",
           "run_layer"]
