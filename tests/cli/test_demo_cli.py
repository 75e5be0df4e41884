import json

from heconv.cli import main


def test_demo_smallest_settings(tmp_path, capsys):
    """The whole pipeline end to end, cleartext backend, tiny data: a smoke test, not a result."""
    code = main(["demo", "--dataset", "digits", "--input-size", "8", "--subset", "200", "--epochs", "1",
                 "--images", "1", "--mode", "plain", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| dense |" in out and "| artemis-diagonal |" in out and "| hunter |" in out
    result = json.loads((tmp_path / "demo.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"dense", "artemis-diagonal", "hunter"}
    for r in rows.values():
        assert r["rotations"] == r["predicted_rotations"] and r["top1_agreement"] == 1.0
    assert rows["hunter"]["pmuls"] <= rows["dense"]["pmuls"]
    assert (tmp_path / "demo.md").read_text().startswith("# Demo: resnet20 on digits 8x8")
