"""Dependencies point one way: heconv <- models <- pruning <- bench."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE = {"heconv": ("models", "pruning", "bench"), "models": ("pruning", "bench"), "pruning": ("bench",)}


@pytest.mark.parametrize("package", list(ABOVE))
def test_importing_a_package_loads_nothing_above_it(package):
    """Every module of the package, imported in a fresh interpreter, pulls in no package above it."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"import {package}\n"
        f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
        "    importlib.import_module(m.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {ABOVE[package]!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"{package} loads {out.stdout.strip()}"


@pytest.mark.parametrize("package", list(ABOVE))
def test_no_import_statement_names_a_package_above(package):
    """Lazy imports inside functions included: every import statement of every module."""
    bad = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                    if n.split(".")[0] in ABOVE[package]]
    assert not bad, bad


def test_only_the_seal_backend_imports_tenseal():
    users = sorted(str(p.relative_to(ROOT)) for pkg in ("heconv", "models", "pruning", "bench")
                   for p in (ROOT / pkg).rglob("*.py") if "import tenseal" in p.read_text())
    assert users == ["heconv/backends/seal.py"]


def test_modules_stay_readable():
    """No module above 400 lines in the packages."""
    long = {str(p.relative_to(ROOT)): n for pkg in ("heconv", "models", "pruning", "bench")
            for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_walk_packages_sees_the_subpackages():
    import heconv

    names = {m.name for m in pkgutil.walk_packages(heconv.__path__, "heconv.")}
    assert {"heconv.backends.seal", "heconv.network.runner", "heconv.frontend.lower"} <= names


def test_pruning_writes_nothing():
    """pruning/ returns data: it imports no sqlite3 or ray and opens nothing for writing."""
    bad = []
    for path in (ROOT / "pruning").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                bad += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in ("sqlite3", "ray")]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("sqlite3", "ray"):
                bad.append(f"{where} imports {node.module}")
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                modes = [a.value for a in node.args[1:2] if isinstance(a, ast.Constant)]
                modes += [k.value.value for k in node.keywords if k.arg == "mode" and isinstance(k.value, ast.Constant)]
                if name == "open" and any(isinstance(m, str) and set(m) & set("wax+") for m in modes):
                    bad.append(f"{where} opens a file for writing")
                if name in ("write_text", "write_bytes", "save", "mkdir", "replace", "unlink", "rename"):
                    bad.append(f"{where} calls {name}")
    assert not bad, bad
