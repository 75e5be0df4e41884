"""Committed results are written only on purpose (issue 21): `artemis report` and `artemis demo`
write under runs/ by default; --publish writes results/ (and the README's block) together."""

import json

import pytest

import bench.cli.report as report_cli
from bench.cli import main
from bench.cli.common import output_folder
from bench.report import read_readme_block, render_readme_block

from .test_report import README, _suites


def test_output_folder(tmp_path):
    import argparse

    runs, results = tmp_path / "runs" / "demo", tmp_path / "results" / "demo"
    assert output_folder(argparse.Namespace(out=None, publish=False), runs, results) == runs
    assert output_folder(argparse.Namespace(out=None, publish=True), runs, results) == results
    assert output_folder(argparse.Namespace(out="x", publish=False), runs, results).name == "x"
    with pytest.raises(ValueError, match=r"--publish writes .*results/demo; --out x contradicts it"):
        output_folder(argparse.Namespace(out="x", publish=True), runs, results)


def test_report_writes_runs_by_default_and_results_only_when_published(tmp_path, monkeypatch, capsys):
    bench = _suites(tmp_path)
    root = tmp_path / "repo"
    (root / "results").mkdir(parents=True)
    (root / "README.md").write_text(README)
    monkeypatch.setattr(report_cli, "ROOT", root)
    monkeypatch.setattr(report_cli, "RUNS", root / "runs")
    monkeypatch.setattr(report_cli, "RESULTS", root / "results")
    args = ["report", str(bench), "--pruning-csv", "none.csv", "--no-db"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert (root / "runs" / "report" / "report.md").is_file() and list((root / "results").iterdir()) == []
    assert (root / "README.md").read_text() == README
    assert out.startswith(f"report: {root / 'runs' / 'report' / 'report.md'}") and "{" not in out  # no raw JSON
    assert "committed results/ left as they are (--publish writes them and the README's block)" in out
    assert main([*args, "--publish"]) == 0
    assert "README block rewritten" in capsys.readouterr().out
    cost_model = json.loads((root / "results" / "cost_model.json").read_text())
    assert read_readme_block(root / "README.md") == render_readme_block(cost_model)  # written together
    assert main([*args, "--publish", "--out", str(tmp_path / "elsewhere")]) == 2
    assert "--publish writes" in capsys.readouterr().err and not (tmp_path / "elsewhere").exists()
