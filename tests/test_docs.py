"""Every repository path the README and docs/ name exists: markdown links (and their
#anchors), backticked paths such as `heconv/conv.py` or `bench/cli/`, backticked file
names such as `report.md` (somewhere in the repository), and backticked module names such
as `heconv.geometry.group_ids`. Git-ignored paths (`runs/`, `.venv/`) are written by the
suite, not held by the repository, and are left out; so are fenced code blocks."""

import importlib
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXTENSIONS = (".py", ".md", ".toml", ".json", ".csv", ".png", ".sqlite", ".txt", ".cfg")
PATH = re.compile(r"^[\w.-]+(/[\w.-]+)*/?$")
MODULE = re.compile(r"^(heconv|models|pruning|bench)(\.\w+)+$")
IGNORED = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
           if line.strip() and not line.startswith("#")]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (commands there may name files they create)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def _ignored(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch(p, pattern) or fnmatch(parts[i - 1], pattern) for i, p in enumerate(prefixes, 1)
               for pattern in IGNORED)


def _anywhere(name: str) -> bool:
    """A bare file name: held somewhere in the repository (outside ignored folders)?"""
    return any(not _ignored(p.relative_to(ROOT).as_posix()) and ".git" not in p.parts for p in ROOT.rglob(name))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+\s+(.*)$", _prose(path.read_text()), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def _links(doc: Path):
    for target in re.findall(r"\]\(([^)\s]+)\)", _prose(doc.read_text())):
        if not target.startswith(("http://", "https://", "mailto:")):
            yield target


def _backticked(doc: Path):
    for span in re.findall(r"`([^`\s]+)`", _prose(doc.read_text())):
        if MODULE.match(span):
            yield "module", span
        elif PATH.match(span) and ("/" in span or span.endswith(EXTENSIONS)) and not span.startswith(".."):
            yield "path", span


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_resolve(doc):
    bad = []
    for target in _links(doc):
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(f"{target}: no such file in the repository")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            bad.append(f"{target}: no heading '#{anchor}' in {path.relative_to(ROOT)}")
    assert not bad, f"{doc.relative_to(ROOT)}: {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_backticked_paths_and_modules_exist(doc):
    bad = []
    for kind, name in _backticked(doc):
        if kind == "path":
            if not _ignored(name) and not (ROOT / name).exists() and not ("/" not in name and _anywhere(name)):
                bad.append(name)
            continue
        parts = name.split(".")
        for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(name)
            break
        else:
            bad.append(name)
    assert not bad, f"{doc.relative_to(ROOT)} names what the repository does not hold: {bad}"


def test_every_doc_is_listed_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert [d.name for d in DOCS[1:] if f"(docs/{d.name})" not in readme] == []
