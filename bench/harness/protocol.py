"""The timing protocol of the benchmark suites, read from pytest-benchmark's own options.

- layer cases: `--benchmark-warmup-iterations` warm-up rounds (with `--benchmark-warmup on`)
  and `--benchmark-min-rounds` timed rounds; the report fits the minimum and records the median;
- whole models: MODEL_IMAGES images (rounds), after the same warm-up;
- garbage collection off while timing: `--benchmark-disable-gc` (pytest-benchmark's runner,
  which `benchmark.pedantic` uses too).

The plugin (bench.pytest_plugin) sets DEFAULTS on those options when a benchmark run does not
name them, so `pytest --benchmark-only` and `artemis bench` time the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

MODEL_IMAGES = 3  # at least 3 images per whole model
# The bound on uploaded values of the suites' last-level cases (`--value-bound`, heconv.network.plan_network):
# about 3x the largest refreshed value measured on the dense Fashion-MNIST ResNet18 (5.5 over 200 test
# images), 12x the synthetic models' and 16x the layer cases' random inputs (in [-1, 1]).
VALUE_BOUND = 16.0
# pytest-benchmark option (its dest) -> the protocol's value, set when the command line does not name it
DEFAULTS: dict[str, Any] = {"benchmark_min_rounds": 5, "benchmark_warmup": True, "benchmark_warmup_iterations": 1,
                            "benchmark_disable_gc": True}
# the command-line flag of each, to tell "named" from "left at pytest-benchmark's default"
FLAGS = {"benchmark_min_rounds": "--benchmark-min-rounds", "benchmark_warmup": "--benchmark-warmup",
         "benchmark_warmup_iterations": "--benchmark-warmup-iterations",
         "benchmark_disable_gc": "--benchmark-disable-gc"}


@dataclass(frozen=True)
class TimingProtocol:
    """How many warm-up and timed rounds a case gets.

    >>> p = TimingProtocol.from_options({"benchmark_min_rounds": 5, "benchmark_warmup": True,
    ...                                  "benchmark_warmup_iterations": 1, "benchmark_disable_gc": True}.get)
    >>> p.rounds, p.warmup_rounds, p.model_images, p.disable_gc
    (5, 1, 3, True)
    >>> TimingProtocol.from_options({"benchmark_min_rounds": 2, "benchmark_warmup": False}.get).warmup_rounds
    0
    """

    rounds: int
    warmup_rounds: int
    model_images: int = MODEL_IMAGES
    disable_gc: bool = False

    @classmethod
    def from_options(cls, getoption: Callable[[str], Any]) -> "TimingProtocol":
        """From pytest-benchmark's options (`config.getoption`)."""
        warm = bool(getoption("benchmark_warmup"))
        return cls(rounds=max(1, int(getoption("benchmark_min_rounds") or 1)),
                   warmup_rounds=max(0, int(getoption("benchmark_warmup_iterations") or 0)) if warm else 0,
                   disable_gc=bool(getoption("benchmark_disable_gc")))

    def to_dict(self) -> dict:
        return asdict(self)


def unnamed_defaults(args: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The protocol's option values the command line `args` does not name (those it names win).

    >>> sorted(unnamed_defaults(["--benchmark-only", "--benchmark-min-rounds=7"]))
    ['benchmark_disable_gc', 'benchmark_warmup', 'benchmark_warmup_iterations']
    >>> unnamed_defaults(["--benchmark-warmup", "off", "--benchmark-warmup-iterations", "2"])["benchmark_min_rounds"]
    5
    """
    named = {dest for dest, flag in FLAGS.items() for a in args if a == flag or a.startswith(flag + "=")}
    return {dest: v for dest, v in DEFAULTS.items() if dest not in named}
