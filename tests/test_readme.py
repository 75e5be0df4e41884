"""The README's promises: it opens with the two commands, and its code runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block == ["bash .ci/setup --with-data && .venv/bin/artemis demo",
                           "bash .ci/setup && .venv/bin/python -m pytest"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert first_block[1] in ci


def test_readme_links_stay_inside_the_repository():
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert all(not link.startswith(("..", "/", "http")) and (ROOT / link).exists() for link in links), links


def test_readme_python_example_runs():
    code = README.split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {"print": lambda *a: None}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["plan"].predicted.rotations == 92
    assert namespace["y"].shape == (64, 16, 16)
