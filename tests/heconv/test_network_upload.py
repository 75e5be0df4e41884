"""A whole network with seeded symmetric uploads: the server loads them, never holds the secret key."""

import numpy as np
import pytest
import torch

import models
from bench.harness.model import measure_model, prepare_model
from heconv.errors import InputError
from heconv.network import Client
from heconv.params import params_for_input


def _small_cnn():
    torch.manual_seed(0)
    return models.build_model("small-cnn", 1, 10).eval()


def test_seeded_uploads_halve_the_traffic_up_and_agree_with_torch():
    model, shape = _small_cnn(), (1, 8, 8)
    images = np.random.default_rng(0).uniform(-1, 1, (1,) + shape)
    records = {}
    for upload in ("seeded", "public"):
        prep = prepare_model(model, shape, params_for_input(8, 8), mode="encrypted", upload=upload)
        loaded = []
        load = prep.server.backend.from_wire
        prep.server.backend.from_wire = lambda w, load=load, loaded=loaded: loaded.append(w.nbytes) or load(w)
        records[upload] = r = measure_model(prep, model, images)
        assert r.top1_agreement == 1.0 and r.max_abs_error < 1e-2 and r.upload == upload
        assert sum(loaded) == r.upload_bytes and len(loaded) == r.ciphertexts_in  # the server loaded each upload
        assert not prep.server.backend.has_secret_key and prep.server.backend._symmetric is None
    seeded, public = records["seeded"], records["public"]
    assert seeded.ciphertexts_in == public.ciphertexts_in
    assert 0.45 < seeded.upload_bytes / public.upload_bytes < 0.55
    assert 0.8 < seeded.download_bytes / public.download_bytes < 1.25  # what comes back is not seeded


def test_the_record_adds_up_the_phases():
    model, shape = _small_cnn(), (1, 8, 8)
    prep = prepare_model(model, shape, params_for_input(8, 8), mode="plain")
    r = measure_model(prep, model, np.zeros((2,) + shape), bandwidth_bps=1e8)
    assert r.network_s == pytest.approx(8 * (r.upload_bytes + r.download_bytes) / 1e8)
    assert r.end_to_end_s == pytest.approx(r.client_s + r.server_s + r.server_io_s + r.network_s)
    assert r.client_s == pytest.approx(r.client_upload_s + r.client_refresh_s)
    assert r.client_upload_s > 0 and r.client_refresh_s > 0 and r.bandwidth_bps == 1e8
    d = r.to_dict()
    assert (d["bytes_client_to_server"], d["bytes_server_to_client"]) == (r.upload_bytes, r.download_bytes)


def test_an_unknown_upload_is_an_input_error(params):
    from heconv.backends.plain import PlainBackend

    with pytest.raises(InputError, match="upload must be one of seeded, public, got 'secret'"):
        Client(PlainBackend(params), "secret")
