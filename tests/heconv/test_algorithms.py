"""The seam (heconv.algorithms): the registry is the one list of algorithms, every registered algorithm
runs through the same interface, and heconv's module imports have no cycle."""

import ast
from pathlib import Path

import numpy as np
import pytest

from bench.harness.layer import torch_conv
from heconv.algorithms import ALGORITHMS, algorithm_name, algorithm_names, get_algorithm, run_layer
from heconv.algorithms.base import ConvAlgorithm
from heconv.backends.plain import PlainBackend
from heconv.errors import InputError

from .helpers import kaiming

HECONV = Path(__file__).resolve().parents[2] / "heconv"
REGISTRY = HECONV / "algorithms" / "__init__.py"
# String constants naming an algorithm outside the registry: the coefficient plan's own tag and the
# coefficient chunkings' helper in the frontend (the network's defaults are DEFAULT_ALGORITHM). Pinned so
# that none is added (tests/test_registry_only.py: no comparison with a name anywhere outside).
LEGACY = {"coeff_plan.py": 1, "frontend/lower.py": 1}


def _name_constants(path: Path) -> int:
    names = set(algorithm_names())
    return sum(1 for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and n.value in names)


def test_the_registry_is_the_only_list_of_algorithm_names():
    found = {str(p.relative_to(HECONV)): c for p in HECONV.rglob("*.py") if p != REGISTRY
             and (c := _name_constants(p))}
    new = {p: c for p, c in found.items() if p.startswith("algorithms/") or c > LEGACY.get(p, 0)}
    assert not new, f"algorithm names outside the registry (ask heconv.algorithms instead): {new}"
    assert _name_constants(REGISTRY) == len(ALGORITHMS)


def test_an_unregistered_instance_is_named_in_the_error():
    from heconv.algorithms.matvec import MatvecAlgorithm

    with pytest.raises(ValueError, match="MatvecAlgorithm instance is not registered"):
        algorithm_name(MatvecAlgorithm())


def test_registry_lookups():
    assert algorithm_names() == tuple(ALGORITHMS)
    for name in algorithm_names():
        alg = get_algorithm(name)
        assert isinstance(alg, ConvAlgorithm) and algorithm_name(alg) == name and alg.summary
    with pytest.raises(InputError, match="unknown conv algorithm 'nope'; known: "):
        get_algorithm("nope")


@pytest.mark.parametrize("name", list(ALGORITHMS))
@pytest.mark.parametrize("stride", [1, 2])
def test_every_algorithm_through_the_interface(params, name, stride):
    """Same code for every registered algorithm: plan, keys, compile, layouts, run, decrypt, counts, groups."""
    rng = np.random.default_rng(5)
    alg = get_algorithm(name)
    w, b = kaiming(rng, 6, 5, 3), rng.normal(0, 0.1, 6)
    x = rng.uniform(-1, 1, (5, 6, 6))
    r = run_layer(alg, w, b, x, PlainBackend(params), stride=stride)
    ref = torch_conv(x, w, b, stride)
    assert r.output.shape == ref.shape == alg.output_layout(r.plan).shape
    assert np.abs(r.output - ref).max() < 1e-6
    assert r.counts == alg.predicted(r.plan)
    assert 0 < alg.plaintexts(r.plan) <= r.counts.pmuls
    assert alg.input_layout(r.plan).shape == x.shape
    assert alg.output_layout(r.plan).ciphertexts == len(alg.output_layout(r.plan).pack(np.zeros(ref.shape)))
    for kind, group in alg.group_ids(r.plan, w.shape).items():
        assert group.ids.shape == w.shape and 0 <= group.ids.min() and group.ids.max() < group.count, kind
        assert group.saves in ("rotation", "pmul") and group.saving.shape == (group.count,)
        assert group.saving.any() and (group.saves == "rotation" or group.saving.all())


def test_layouts_are_frozen_values(params):
    """Equal layouts place values alike: matvec reads what the slot engine writes at stride 1 (unless it
    reads rotated copies or complex pairs, layouts of their own)."""
    import dataclasses

    w = np.ones((16, 16, 3, 3))
    slot, matvec = get_algorithm("slot"), get_algorithm("matvec")
    out = slot.output_layout(slot.plan(w, 8, 8, params))
    real = matvec.plan(w, 8, 8, params, copies=1, complex_pack=False)
    assert out == matvec.input_layout(real) and hash(out) is not None
    for options in ({"copies": 4, "complex_pack": False}, {"complex_pack": True}):
        own = matvec.input_layout(matvec.plan(w, 8, 8, params, **options))
        assert own.placement != out.placement and hash(own) is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.channels = 3


def _module_imports() -> dict[str, set[str]]:
    """heconv module -> the heconv modules it imports (lazy imports inside functions included)."""
    graph = {}
    for path in HECONV.rglob("*.py"):
        parts = path.relative_to(HECONV.parent).with_suffix("").parts
        mod = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.startswith("heconv"):
                    deps.add(target)
                    deps.update(f"{target}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("heconv"))
        graph[mod] = deps
    return {m: {d for d in ds if d in graph and d != m} for m, ds in graph.items()}


def test_leaf_module_breaks_the_params_cycle():
    """params -> geometry -> cost -> backends.base -> params was a cycle; basics imports nothing of heconv."""
    graph = _module_imports()
    assert graph["heconv.basics"] == set()

    def reaches(a, b, seen=None):
        seen = seen if seen is not None else set()
        return any(d == b or (d not in seen and not seen.add(d) and reaches(d, b, seen)) for d in graph[a])

    core = ["heconv.params", "heconv.geometry", "heconv.cost", "heconv.backends.base", "heconv.basics"]
    assert [m for m in core if reaches(m, m)] == []
