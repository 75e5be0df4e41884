import csv
import json

import torch

from bench.cli import main


def test_train_then_prune_on_digits(tmp_path, capsys):
    out, results = tmp_path / "run", tmp_path / "summary.csv"
    assert main(["train", "--model", "small-cnn", "--dataset", "digits", "--input-size", "8", "--epochs", "1",
                 "--lambda-d", "1e-3", "--out", str(out)]) == 0
    capsys.readouterr()
    obj = torch.load(out / "model.pt", weights_only=True)
    assert obj["meta"]["model"] == "small-cnn" and obj["meta"]["lambda_d"] == 1e-3
    assert json.loads((out / "train.json").read_text())["history"][0]["epoch"] == 1
    assert main(["prune", "--method", "artemis-diagonal", "--checkpoint", str(out / "model.pt"), "--reference",
                 str(out / "model.pt"), "--fractions", "0.5,0.9", "--max-drop", "100", "--out", str(out),
                 "--results", str(results)]) == 0
    summary = json.loads((out / "summary-artemis-diagonal.json").read_text())
    assert summary["fraction"] == 0.9 and len(summary["layers"]) == 2
    assert summary["cut_off"] is True  # the last fraction was accepted: the point is a bound
    from bench.experiments.store import ExperimentStore

    db = results.parent / "experiments.sqlite"
    assert {r["cut_off"] for r in ExperimentStore(db).export_rows("experiments")} == {1}
    assert all(len(layer["kept_diagonals"]) >= 1 for layer in summary["layers"])
    rows = list(csv.DictReader(open(results)))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    rot = [int(r["rotations"]) for r in rows]
    assert rot[0] > rot[1] > rot[2]
    pruned = torch.load(out / "pruned-artemis-diagonal.pt", weights_only=True)["state_dict"]
    assert float((pruned["conv2.weight"] == 0).float().mean()) >= 0.85
    # the held member prunes only a model trained with the held-scale Lasso
    capsys.readouterr()
    assert main(["prune", "--method", "artemis-diagonal-held", "--checkpoint", str(out / "model.pt"), "--out",
                 str(tmp_path / "held"), "--results", str(tmp_path / "held.csv")]) == 2
    assert "trained with --lasso proximal; artemis-diagonal-held prunes a model trained with --lasso proximal-held" \
        in capsys.readouterr().err
    assert not (tmp_path / "held").exists()


def test_prune_errors(tmp_path, capsys):
    assert main(["prune", "--method", "hunter", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    torch.save({"weights": 1}, tmp_path / "odd.pt")
    assert main(["prune", "--method", "hunter", "--checkpoint", str(tmp_path / "odd.pt"), "--out", str(tmp_path)]) == 2
    assert "as written by 'artemis train'" in capsys.readouterr().err
    assert not list(tmp_path.glob("pruned-*")) and not list(tmp_path.glob(".*"))  # nothing half-written


def test_train_and_prune_follow_the_auto_schedule(tmp_path, capsys):
    """With --schedule auto the baby step of each conv is fixed on the dense model at training and
    kept by prune; the rotations pruning saves are those of that schedule."""
    out, results = tmp_path / "run", tmp_path / "summary.csv"
    assert main(["train", "--model", "resnet20", "--dataset", "digits", "--input-size", "8", "--epochs", "1",
                 "--subset", "200", "--schedule", "auto", "--out", str(out)]) == 0
    capsys.readouterr()
    meta = torch.load(out / "model.pt", weights_only=True)["meta"]
    assert meta["schedule"] == "auto" and any(s != "output-rotation" for s in meta["schedules"].values())
    assert main(["prune", "--method", "artemis-diagonal", "--checkpoint", str(out / "model.pt"), "--fractions", "0.5",
                 "--max-drop", "100", "--out", str(out), "--results", str(results)]) == 0
    summary = json.loads((out / "summary-artemis-diagonal.json").read_text())
    assert summary["schedules"] == meta["schedules"]
    assert {layer["layer"]: layer["schedule"] for layer in summary["layers"]} == meta["schedules"]
    rows = list(csv.DictReader(open(results)))
    assert int(rows[0]["rotations"]) > int(rows[1]["rotations"])
    assert main(["prune", "--method", "dense", "--checkpoint", str(out / "model.pt"), "--schedule", "bsgs:3",
                 "--out", str(out), "--results", str(results)]) == 2
    assert "bsgs:3" in capsys.readouterr().err
