"""The algorithm registry (heconv/algorithms/__init__.py) is the only place that tells algorithms apart
(issue 22): outside heconv/algorithms/, no code compares anything with an algorithm's name, tests a plan's
or an algorithm's type, or probes a plan for an attribute only some algorithms' plans have.

The check reads the syntax tree of every module of heconv, models, pruning and bench, and flags
- a comparison (==, !=, in, not in, is, is not, a match case) one side of which is a registered name as a
  string literal (or a tuple, list or set holding one). Passing a name as an argument or default value
  (`plan_network(..., algorithm="slot")`) is not a branch and is allowed;
- `isinstance`/`issubclass` with, `type(x) is`/`==` against, or a match class pattern of a registered
  algorithm's class or its plan's class (e.g. `isinstance(a.plan, CoeffPlan)`), and an import of an
  algorithm's class (a table keyed by it is a branch by another name);
- `getattr`/`hasattr` on a plan (`plan` or `<x>.plan`) with a literal attribute name: a duck-typed
  branch on what kind of plan it is. What differs between algorithms is a method of ConvAlgorithm.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from heconv.algorithms import ALGORITHMS, algorithm_names
from heconv.params import ckks_params

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


def registered_classes() -> set[str]:
    """The class names of every registered algorithm and of the plan each makes (planned on a small conv)."""
    w, params = np.ones((2, 2, 3, 3)), ckks_params(depth=1)
    return ({type(a).__name__ for a in ALGORITHMS.values()}
            | {type(a.plan(w, 4, 4, params)).__name__ for a in ALGORITHMS.values()})


def _class_names_in(node: ast.AST, classes: set[str]) -> set[str]:
    """The class names of `classes` that `node` is (a name or an attribute) or holds (a tuple of them)."""
    if isinstance(node, ast.Name):
        return {node.id} & classes
    if isinstance(node, ast.Attribute):
        return {node.attr} & classes
    if isinstance(node, ast.Tuple):
        return set().union(*(_class_names_in(e, classes) for e in node.elts)) if node.elts else set()
    return set()


def _is_plan(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "plan") or (isinstance(node, ast.Attribute)
                                                                 and node.attr == "plan")


def type_branches(source: str, classes: set[str]) -> list[tuple[int, str]]:
    """(line, what) of every test of a plan's or an algorithm's type, import of an algorithm's class, and
    attribute probe on a plan in `source`.

    >>> src = 'if isinstance(a.plan, CoeffPlan): pass\\nok = hasattr(plan, "chunking")\\nf(getattr(x, "y", 1))'
    >>> type_branches(src, {"CoeffPlan"})
    [(1, 'isinstance CoeffPlan'), (2, "hasattr on a plan: 'chunking'")]
    >>> type_branches('from heconv.algorithms.slot import SlotAlgorithm\\nok = type(p) is ConvPlan',
    ...               {"SlotAlgorithm", "ConvPlan"})
    [(1, 'import SlotAlgorithm'), (2, 'type() is ConvPlan')]
    """
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            f, args = node.func.id, node.args
            if f in ("isinstance", "issubclass") and len(args) == 2:
                hits += [(node.lineno, f"{f} {c}") for c in sorted(_class_names_in(args[1], classes))]
            elif f in ("getattr", "hasattr") and len(args) >= 2 and _is_plan(args[0]) \
                    and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str):
                hits.append((node.lineno, f"{f} on a plan: {args[1].value!r}"))
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(x, ast.Call) and isinstance(x.func, ast.Name) and x.func.id == "type" for x in sides):
                hits += [(node.lineno, f"type() is {c}") for x in sides for c in sorted(_class_names_in(x, classes))]
        elif isinstance(node, ast.MatchClass):
            hits += [(node.lineno, f"case {c}()") for c in sorted(_class_names_in(node.cls, classes))]
        elif isinstance(node, ast.ImportFrom):
            algorithms = {type(a).__name__ for a in ALGORITHMS.values()}
            hits += [(node.lineno, f"import {a.name}") for a in node.names if a.name in algorithms & classes]
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


@pytest.mark.parametrize("snippet", [
    "if isinstance(a.plan, CoeffPlan): pass",
    "ok = isinstance(p, (int, MatvecPlan))",
    "ok = type(plan) == ConvPlan",
    'choices = [a.plan.choice for a in acts if getattr(a.plan, "choice", None)]',
    'ok = hasattr(plan, "packing")',
    "match plan:\n    case CoeffPlan(): pass",
    "from heconv.algorithms.coefficient import CoefficientAlgorithm",
    "HARNESSES = {SlotAlgorithm: 1} if issubclass(k, SlotAlgorithm) else {}",
])
def test_the_scan_catches_a_branch_on_a_type(snippet):
    assert type_branches(snippet, registered_classes())


def test_the_registered_classes_are_found():
    assert {"SlotAlgorithm", "CoefficientAlgorithm", "MatvecAlgorithm", "ConvPlan", "CoeffPlan",
            "MatvecPlan"} <= registered_classes()


def test_nothing_outside_the_registry_branches_on_a_plan_or_algorithm_type():
    classes = registered_classes()
    found = [f"{p.relative_to(ROOT)}:{line}: {what}" for p in _modules()
             for line, what in type_branches(p.read_text(), classes)]
    assert not found, "ask the algorithm instead (a method of heconv.algorithms.ConvAlgorithm):\n" + "\n".join(found)
