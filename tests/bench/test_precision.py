"""Nothing silently wrong: a layer whose values would wrap around the modulus is refused
before any ciphertext exists, and a result outside its tolerance exits non-zero."""

import numpy as np
import pytest
import torch

import models
from bench.cli import main
from bench.harness.layer import prepare_layer
from bench.harness.model import measure_model, prepare_model
from heconv.backends import make_backend
from heconv.bounds import check_bound, headroom, output_gain
from heconv.params import ckks_params, params_for_input


def test_headroom_follows_the_chain():
    p1, p3 = ckks_params(depth=1), ckks_params(depth=3)
    assert headroom(p1, 0) == 2.0**19  # 100-bit data modulus, products at 2^80
    assert headroom(p3, 0) == 2.0**99 and headroom(p3, 2) == 2.0**19
    assert headroom(ckks_params(depth=1, scale_bits=30), 0) == 2.0**29
    with pytest.raises(ValueError, match="layer c1: values may reach 1e\\+06, beyond the 5.24e\\+05"):
        check_bound("c1", 1e6, p1, 0)
    check_bound("c1", 5e5, p1, 0)


def test_layer_bound_fires_before_any_key_or_ciphertext():
    params = params_for_input(8, 8)
    backend = make_backend("plain", params)
    w = np.full((4, 4, 3, 3), 2e4)  # gain 4*9*2e4 = 7.2e5 on inputs in [-1, 1]
    assert output_gain(w) == pytest.approx(7.2e5)
    with pytest.raises(ValueError, match="layer big: values may reach 7.2e\\+05"):
        prepare_layer(w, None, 8, 8, 1, backend, name="big")
    assert backend.counter.encryptions == 0 and not backend.galois_steps
    prepare_layer(w, None, 8, 8, 1, backend, name="big", check_bounds=False)  # the opt-out


def _small_cnn(square: bool = False, scale_fc: float = 1.0, scale_convs: float = 1.0):
    torch.manual_seed(0)
    m = models.build_model("small-cnn-square" if square else "small-cnn", 1, 10).eval()
    with torch.no_grad():
        m.fc.weight.mul_(scale_fc)
        m.conv1.weight.mul_(scale_convs)
        m.conv2.weight.mul_(scale_convs)
    return m


def test_network_bound_names_the_linear_layer():
    model, shape = _small_cnn(scale_fc=1e9), (1, 8, 8)
    prep = prepare_model(model, shape, params_for_input(8, 8), mode="plain")
    x = np.random.default_rng(0).uniform(-1, 1, (1,) + shape)
    with pytest.raises(ValueError, match="layer fc: values may reach"):
        measure_model(prep, model, x)
    # the fc input was never encrypted: only conv1's and conv2's inputs went up
    uploads = [a for a in prep.plan.actions if type(a).__name__ == "Encrypt"]
    assert len(uploads) == 3 and uploads[-1].linear is not None


def test_square_network_refused_before_encryption():
    model, shape = _small_cnn(square=True, scale_convs=100.0), (1, 8, 8)
    prep = prepare_model(model, shape, mode="plain", protocol="non-interactive")
    with pytest.raises(ValueError, match="values may reach"):
        measure_model(prep, model, np.random.default_rng(0).uniform(-1, 1, (1,) + shape))
    assert prep.client.bytes_sent == 0


def test_large_input_amplitude_refused():
    model, shape = _small_cnn(), (1, 8, 8)
    prep = prepare_model(model, shape, params_for_input(8, 8), mode="plain")
    with pytest.raises(ValueError, match="layer conv1: values may reach"):
        measure_model(prep, model, np.full((1,) + shape, 1e7))
    assert prep.client.bytes_sent == 0


def test_cli_exit_codes(tmp_path, capsys):
    np.save(tmp_path / "big.npy", np.full((4, 4, 3, 3), 1e6))
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--weights", str(tmp_path / "big.npy"),
                 "--mode", "plain"]) == 2
    assert "layer conv: values may reach" in capsys.readouterr().err
    # 20-bit scale: runs, but the error is far outside the tolerance -> exit 1, and it says so
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--scale-bits", "20"]) == 1
    captured = capsys.readouterr()
    assert "EXCEEDED" in captured.out and "outside the tolerance" in captured.err
    assert main(["layer", "--c-in", "4", "--c-out", "4", "--hw", "8", "--mode", "plain"]) == 0
