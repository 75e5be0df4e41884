"""bench.peers.orion_conv and bench/test_peers.py's cases: without Orion (always) and with it (when installed)."""

import ast
from pathlib import Path

import numpy as np
import pytest

import bench.peers.orion_conv as oc
from heconv.params import ckks_params

ROOT = Path(__file__).resolve().parents[2]


def _shapes(path: Path) -> list[tuple]:
    tree = ast.parse(path.read_text())
    return next(ast.literal_eval(n.value) for n in tree.body
                if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "SHAPES")


def test_peer_shapes_are_the_layer_suites_and_resnet18s_strided_3x3s():
    from bench.test_peers import SHAPES as peers
    from bench.test_peers import STRIDED

    layers = _shapes(ROOT / "bench" / "test_layers.py")
    assert set(peers) <= set(layers) | set(STRIDED)
    # every strided 3x3 conv of ResNet18 at 16x16: 64->128 (16x16), 128->256 (8x8), 256->512 (4x4)
    assert {(s[2], s[3], s[4]) for s in peers if s[0] == "resnet18" and s[6] == 2} == {(64, 128, 16), (128, 256, 8),
                                                                                     (256, 512, 4)}
    assert {s for s in layers if s[0] == "resnet18" and s[5] == 3 and (s[4] == 16 or s[6] == 1)} <= set(peers)
    assert ("resnet20", "layer1.conv3x3", 16, 16, 16, 3, 1) in peers


def test_config_follows_our_parameters():
    cfg = oc.orion_config(ckks_params(depth=2))
    assert cfg["ckks_params"]["LogQ"] == [60, 40, 40] and cfg["ckks_params"]["LogP"] == [60]
    assert cfg["orion"]["debug"] is False and cfg["orion"]["io_mode"] == "none"


def test_bad_inputs_are_refused_before_orion_is_needed():
    params = ckks_params(depth=1)
    with pytest.raises(ValueError,
                       match=r"weight: expected \[C_out, C_in, k, k\] with k odd, got shape \[4, 4, 2, 2\]"):
        oc.prepare_orion_conv(np.zeros((4, 4, 2, 2)), None, 8, 8, 1, params)
    with pytest.raises(ValueError, match=r"bias: expected shape \[4\] \(C_out\), got \[3\]"):
        oc.prepare_orion_conv(np.zeros((4, 4, 3, 3)), np.zeros(3), 8, 8, 1, params)
    with pytest.raises(ValueError, match=r"x: expected shape \[4, 8, 8\] \(C_in, H, W\), got \[4, 8, 7\]"):
        oc.prepare_orion_conv(np.zeros((4, 4, 3, 3)), None, 8, 8, 1, params, x=np.zeros((4, 8, 7)))


def test_missing_orion_names_the_separate_environment(monkeypatch):
    monkeypatch.setattr(oc, "orion_version", lambda: None)
    with pytest.raises(ImportError, match=r"orion-fhe is not installed: give Orion its own environment as the "
                                          r"README's 'Beside Orion' says \(python -m venv \.\./venv-orion"):
        oc.prepare_orion_conv(np.zeros((4, 4, 3, 3)), None, 8, 8, 1, ckks_params(depth=1))


def test_orion_cases_are_skipped_with_the_command_when_orion_is_missing(monkeypatch):
    import bench.test_peers as tp

    monkeypatch.setattr(tp, "orion_version", lambda: None)
    cases = list(tp._cases())
    orion = [c for c in cases if c.values[3] == "orion"]
    assert len(orion) == len(tp.SHAPES)
    assert all(m.kwargs["reason"] == tp.NO_ORION for c in orion for m in c.marks)
    assert "../venv-orion" in tp.NO_ORION and "scipy==1.14.1" in tp.NO_ORION  # the README's separate environment
    ours = [c for c in cases if c.values[3] == "artemis"]
    assert ours and not any(c.marks for c in ours)
    assert {(c.values[4], c.values[5]) for c in ours} >= {("auto", 1), ("auto", 2)}


@pytest.mark.parametrize("c_in, c_out, hw, stride", [(8, 8, 8, 1), (8, 16, 8, 2)])
def test_orion_matches_torch(c_in, c_out, hw, stride):
    pytest.importorskip("orion", reason="orion-fhe not installed (its own environment: README, Beside Orion)")
    rng = np.random.default_rng(0)
    w, b = rng.normal(0, 0.2, (c_out, c_in, 3, 3)), rng.normal(0, 0.1, c_out)
    prep = oc.prepare_orion_conv(w, b, hw, hw, stride, ckks_params(depth=1))
    try:
        with pytest.raises(RuntimeError, match="already prepared"):
            oc.prepare_orion_conv(w, b, hw, hw, stride, ckks_params(depth=1))
        runs = [oc.run_orion_conv(prep) for _ in range(2)]
        rec = oc.orion_record(prep, runs[-1], runs)
    finally:
        prep.close()
    assert rec["max_abs_error"] < 1e-4 * rec["max_abs_reference"]
    assert rec["output_gap"] == stride and rec["input_ciphertexts"] == 1 and rec["blocks"] == 1
    assert rec["key_switches_estimate"] >= rec["galois_keys"] > 0 and rec["poly_modulus_degree"] == 8192
    prep.close()  # twice: nothing left to free
    again = oc.prepare_orion_conv(w, b, hw, hw, stride, ckks_params(depth=1))  # a fresh scheme after close
    again.close()
