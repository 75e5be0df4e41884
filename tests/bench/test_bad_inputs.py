"""Every bad input a clear error: exit 2, one line on stderr naming the file or option and
what was expected, no traceback, and no output file left behind."""

import json

import numpy as np
import numpy.lib.format as npformat
import pytest
import torch

import models
from bench.cli import main
from bench.results import save_checkpoint

META = {"model": "small-cnn", "in_channels": 1, "num_classes": 10, "dataset": "digits", "input_size": 8,
        "subset": 0, "seed": 0, "poly_modulus_degree": 8192}


def _files(d):
    np.save(d / "ok.npy", np.zeros((4, 4, 3, 3)))
    (d / "empty.npy").write_bytes(b"")
    with open(d / "huge.npy", "wb") as f:  # the header claims 671 GiB
        npformat.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000, 9)})
        f.write(np.zeros(16).tobytes())
    np.save(d / "complex.npy", np.ones((4, 4, 3, 3)) * (1 + 1j))
    np.save(d / "nan.npy", np.full((4, 4, 3, 3), np.nan))
    torch.save({"a": 1}, d / "dict.pt")
    m = models.build_model("small-cnn", 1, 10)
    save_checkpoint(m, d / "no-size.pt", {k: v for k, v in META.items() if k != "input_size"})
    save_checkpoint(m, d / "size0.pt", {**META, "input_size": 0})
    save_checkpoint(models.build_model("small-cnn", 3, 10), d / "other.pt", META)  # 3-channel weights, meta says 1
    (d / "a-file").write_text("x")
    (d / "folder").mkdir()


LAYER = ["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--mode", "plain"]
PRUNE = ["prune", "--method", "artemis-diagonal", "--out", "{d}/out"]
TRAIN = ["train", "--model", "small-cnn", "--dataset", "digits", "--input-size", "8", "--out", "{d}/out"]
CASES = [
    ("empty npy", LAYER + ["--weights", "{d}/empty.npy"], "empty.npy: not a plain .npy array"),
    ("npy header 671 GiB", LAYER + ["--weights", "{d}/huge.npy"], "its header claims [100000, 100000, 9]"),
    ("complex npy", LAYER + ["--weights", "{d}/complex.npy"], "dtype complex128; expected real numbers"),
    ("NaN weights", LAYER + ["--weights", "{d}/nan.npy"], "holds NaN or Inf values"),
    ("a dict as weights", LAYER + ["--weights", "{d}/dict.pt"], "expected one tensor, got dict"),
    ("wrong weight shape", ["layer", "--c-in", "8", "--c-out", "4", "--hw", "8", "--weights", "{d}/ok.npy"],
     "shape [4, 4, 3, 3], expected [C_out, C_in, k, k] = [4, 8, 3, 3]"),
    ("value bound, coefficient", ["infer", "--model", "small-cnn", "--input-size", "8", "--mode", "plain",
                                  "--algorithm", "coefficient", "--value-bound", "16"],
     "a value bound moves convs to the chain's last level, which the coefficient algorithm never uses"),
    ("plan beyond memory", ["layer", "--c-in", "1", "--c-out", "100000", "--hw", "16", "--mode", "plain"],
     "GiB (keys, plaintexts, ciphertexts); this process may take"),  # the ciphertexts follow --workers
    ("prune: meta without input_size", PRUNE + ["--checkpoint", "{d}/no-size.pt"], "meta lacks ['input_size']"),
    ("prune: input_size 0", PRUNE + ["--checkpoint", "{d}/size0.pt"],
     "meta input_size = 0; expected a whole number of pixels in [1, 512]"),
    ("prune: another model's weights", PRUNE + ["--checkpoint", "{d}/other.pt"],
     "does not fit small-cnn: "),
    ("prune: max-drop nan", PRUNE + ["--checkpoint", "{d}/size0.pt", "--max-drop", "nan"],
     "argument --max-drop: expected a finite number >= 0, got 'nan'"),
    ("prune: results is a folder", PRUNE + ["--checkpoint", "{d}/size0.pt", "--results", "{d}/folder"],
     "--results {d}/folder is a folder"),
    ("train: lr nan", TRAIN + ["--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    ("train: lambda-d -1", TRAIN + ["--lambda-d", "-1"], "argument --lambda-d: expected a finite number >= 0"),
    ("train: out is a file", TRAIN[:-1] + ["{d}/a-file"], "--out {d}/a-file is a file; expected a folder"),
    ("infer: another model's checkpoint", ["infer", "--checkpoint", "{d}/other.pt", "--mode", "count"],
     "does not fit the model"),
    ("infer: unknown model", ["infer", "--model", "vgg", "--mode", "count"], "unknown model 'vgg'"),
    ("report: no such file", ["report", "{d}/none.json", "--out", "{d}/out"], "none.json"),
]


@pytest.mark.parametrize("argv, message", [pytest.param(a, m, id=i) for i, a, m in CASES])
def test_bad_input(tmp_path, capsys, monkeypatch, argv, message):
    # the machine's free RAM held at 16 GiB, so that "plan beyond memory" (about 28 GiB) fails on any host
    monkeypatch.setattr("bench.harness.memory.free_ram", lambda: 16 << 30)
    _files(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    code = main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message.format(d=tmp_path) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, nothing left


def test_toy_parameters_say_insecure(capsys):
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--mode", "plain", "--toy-params",
                 "--poly-modulus-degree", "4096", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["insecure"] is True
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--mode", "plain", "--toy-params",
                 "--poly-modulus-degree", "4096"]) == 0
    assert "INSECURE toy parameters" in capsys.readouterr().out
