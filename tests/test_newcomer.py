"""The newcomer's path (issue 21): the README's commands, run in a fresh copy of the repository,
change no tracked file and leave the README and report tests passing.

The copy holds the working tree's tracked files (committed there once), so the test checks the
code as it stands. `artemis demo` runs with tiny settings (its fast equivalent: digits at 8x8,
one epoch, the cleartext backend); `artemis report` runs as the README gives it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


def _copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    subprocess.run([*GIT, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "copy"], cwd=dest, check=True)


def test_readme_commands_leave_the_repository_clean(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _copy(repo)
    env = {**os.environ, "PYTHONPATH": str(repo), "RAY_USAGE_STATS_ENABLED": "0"}
    artemis = [sys.executable, "-m", "bench.cli"]
    commands = [  # the README's, with the demo's settings made tiny
        [*artemis, "demo", "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1",
         "--images", "1", "--mode", "plain"],
        [*artemis, "report"],
    ]
    procs = [subprocess.Popen(c, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outs = [p.communicate(timeout=600) for p in procs]
    for c, p, (out, err) in zip(commands, procs, outs):
        assert p.returncode == 0, (c, out[-2000:], err[-2000:])
    assert f"written: {repo / 'runs' / 'demo' / 'demo.md'}" in outs[0][0]
    assert f"report: {repo / 'runs' / 'report' / 'report.md'}" in outs[1][0]
    assert "Token authentication" not in outs[0][1]  # Ray's notices only with -v
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_readme.py",
                            "tests/bench/test_report.py::test_repo_readme_block_is_the_rendered_cost_model"],
                           cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True)
    assert status.stdout == "", status.stdout  # no tracked file changed, nothing new outside the ignored runs/
    assert (repo / "runs" / "demo" / "report.md").is_file() and (repo / "runs" / "report" / "report.md").is_file()
