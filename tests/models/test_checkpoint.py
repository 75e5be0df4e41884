import pytest
import torch

from bench.harness.layer import model_layers, representative_layers
from bench.results import save_checkpoint
from heconv.params import params_for_input
from models import build_model
from models.checkpoint import find_checkpoints, load_checkpoint_model

META = {"model": "resnet20", "in_channels": 1, "num_classes": 10, "input_size": 8}


def test_find_checkpoints_reads_model_and_method_from_meta(tmp_path):
    torch.manual_seed(0)
    m = build_model("resnet20", 1, 10)
    save_checkpoint(m, tmp_path / "a" / "pruned-x.pt", {**META, "method": "hunter"})
    save_checkpoint(m, tmp_path / "b" / "pruned-y.pt", {**META, "method": "artemis-diagonal"})
    save_checkpoint(m, tmp_path / "b" / "model.pt", META)  # a training checkpoint: not a pruned one
    found = find_checkpoints([tmp_path / "a", tmp_path / "b", tmp_path / "missing"])
    assert found == {("resnet20", "hunter"): tmp_path / "a" / "pruned-x.pt",
                     ("resnet20", "artemis-diagonal"): tmp_path / "b" / "pruned-y.pt"}
    model, meta = load_checkpoint_model(found[("resnet20", "hunter")])
    assert meta["method"] == "hunter" and not model.training
    assert torch.equal(model.conv1.weight, m.conv1.weight)


def test_find_checkpoints_rejects_meta_without_method(tmp_path):
    save_checkpoint(build_model("resnet20", 1, 10), tmp_path / "pruned-z.pt", META)
    with pytest.raises(ValueError, match=r"pruned-z.pt: meta has no 'model'/'method'"):
        find_checkpoints([tmp_path])


def test_load_checkpoint_model_names_a_mismatched_checkpoint(tmp_path):
    save_checkpoint(build_model("resnet20", 1, 10), tmp_path / "pruned-w.pt", {**META, "model": "resnet18"})
    with pytest.raises(ValueError, match=r"pruned-w.pt does not fit resnet18"):
        load_checkpoint_model(tmp_path / "pruned-w.pt")


def test_representative_layers_one_per_engine_shape():
    torch.manual_seed(0)
    shape = (1, 16, 16)
    layers = model_layers(build_model("resnet18", 1, 10).eval(), shape, params_for_input(*shape[1:]))
    reps = representative_layers(layers)
    assert len(layers) == 20 and len({layer.shape_key for layer in layers}) == len(reps) == 11
    # the client subsamples before a stride-2 shortcut, so the engine runs it at stride 1 on 8x8
    assert ("layers.1.0.shortcut.0", (64, 128, 1, 8, 1)) in [(r.name, r.shape_key) for r in reps]
