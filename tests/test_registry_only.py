"""The algorithm registry (heconv/algorithms/__init__.py) is the only place that tells algorithms apart
by name (issue 22): outside heconv/algorithms/, no code compares anything with an algorithm's name.

The check reads the syntax tree of every module of heconv, models, pruning and bench, and flags a
comparison (==, !=, in, not in, is, is not, a match case) one side of which is a registered name as a
string literal (or a tuple, list or set holding one). Passing a name as an argument or default value
(`plan_network(..., algorithm="slot")`) is not a branch and is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from heconv.algorithms import algorithm_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("heconv", "models", "pruning", "bench")
EXEMPT = ROOT / "heconv" / "algorithms"


def _names_in(node: ast.AST, names: set[str]) -> set[str]:
    """The registered names `node` is (a string literal) or holds (a tuple, list or set of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} & names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_names_in(e, names) for e in node.elts)) if node.elts else set()
    return set()


def name_comparisons(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every comparison with a registered name in `source`.

    >>> name_comparisons('if a.algorithm == "slot":\\n    pass\\nf(algorithm="slot")', {"slot"})
    [(1, 'slot')]
    >>> src = 'x = y not in ("coefficient", "z")\\nmatch k:\\n    case "slot": pass'
    >>> name_comparisons(src, {"slot", "coefficient"})
    [(1, 'coefficient'), (3, 'slot')]
    """
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                hits += [(node.lineno, n) for n in sorted(_names_in(side, names))]
        elif isinstance(node, ast.MatchValue):
            hits += [(node.lineno, n) for n in sorted(_names_in(node.value, names))]
    return hits


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if EXEMPT not in p.parents)


def test_the_scan_sees_every_package():
    files = _modules()
    assert len(files) > 50 and {p.relative_to(ROOT).parts[0] for p in files} == set(PACKAGES)
    assert not any(EXEMPT in p.parents for p in files)


@pytest.mark.parametrize("snippet", [
    'if args.algorithm == "coefficient": pass',
    'ok = "matvec" != name',
    'ok = plan.algorithm in ("slot", "other")',
    'ok = name is "slot"',
    'match name:\n    case "matvec": pass',
])
def test_the_scan_catches_a_branch_on_a_name(snippet):
    assert name_comparisons(snippet, set(algorithm_names()))


def test_nothing_outside_the_registry_branches_on_an_algorithm_name():
    names = set(algorithm_names())
    found = [f"{p.relative_to(ROOT)}:{line}: compares with {name!r}"
             for p in _modules() for line, name in name_comparisons(p.read_text(), names)]
    assert not found, "branch on the registry instead (heconv.algorithms.ConvAlgorithm):\n" + "\n".join(found)
