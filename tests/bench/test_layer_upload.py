"""Layer cases upload like `artemis infer`: the client encrypts the input seeded with its secret key,
the server runs on a public view that holds none, and the record states the bytes that crossed."""

import numpy as np
import pytest

from bench.harness.layer import prepare_layer
from bench.harness.layer_record import measure_layer
from heconv.backends import make_backend
from heconv.cost import DEFAULT_UNIT_COSTS
from heconv.params import ckks_params
from heconv.traffic import Objective, ciphertext_bytes

P = ckks_params(depth=1)


def _weights():
    rng = np.random.default_rng(0)
    return rng.normal(0, 0.2, (4, 4, 3, 3)), rng.normal(0, 0.1, 4)


def _server_holds_no_secret(prep):
    b = prep.backend
    assert not b.has_secret_key and b._symmetric is None and b._decryptor is None and b._keygen is None
    assert prep.client.has_secret_key
    with pytest.raises(PermissionError):
        b.encrypt_for_upload(b.encode(np.zeros(b.slots)))


def test_a_slot_layer_uploads_seeded_and_the_server_cannot_decrypt():
    w, bias = _weights()
    sizes = {}
    for upload in ("seeded", "public"):
        prep = prepare_layer(w, bias, 4, 4, 1, make_backend("encrypted", P), upload=upload)
        _server_holds_no_secret(prep)
        r = measure_layer(prep, DEFAULT_UNIT_COSTS)  # planning costs: the figures are not the point here
        assert r.upload == upload and r.bytes_client_to_server == prep.upload_bytes
        assert r.counts_match_plan and r.max_abs_error < 1e-3
        sizes[upload] = r.bytes_client_to_server / r.n_in
    assert 0.4 < sizes["seeded"] / sizes["public"] < 0.55  # SEAL's own serialization, measured


def test_a_coefficient_layer_uploads_as_its_objective_says():
    w, bias = _weights()
    prep = prepare_layer(w, bias, 4, 4, 1, make_backend("plain", P), algorithm="coefficient",
                         options={"objective": Objective(1e8)})
    assert prep.backend._secret is False and prep.client._secret is True
    d = measure_layer(prep, DEFAULT_UNIT_COSTS).to_dict()
    assert d["upload"] == "seeded" and d["bandwidth_bps"] == 1e8 and d["chunking_objective"] == "end-to-end"
    # modelled words, at the last level
    assert d["bytes_client_to_server"] == d["n_in"] * ciphertext_bytes(P, P.depth, seeded=True)
    assert d["predicted_phases"]["upload_bytes"] == d["bytes_client_to_server"]
    assert d["predicted_phases"]["download_bytes"] == d["bytes_server_to_client"]
    chosen = d["chunk_choice"]["candidates"][d["chunk_choice"]["chosen"]]
    assert chosen["c_w"] == d["c_w"] and d["counts_match_plan"] and d["max_abs_error"] < 1e-9


def test_an_encrypted_coefficient_layer_keeps_the_secret_with_the_client():
    w, bias = _weights()
    prep = prepare_layer(w, bias, 4, 4, 1, make_backend("encrypted", P), algorithm="coefficient")
    _server_holds_no_secret(prep)
    r = measure_layer(prep, DEFAULT_UNIT_COSTS)
    assert r.counts_match_plan and r.max_abs_error < 1e-3 and r.upload == "seeded"
    assert 0.4 < r.bytes_client_to_server / (r.n_in * ciphertext_bytes(P, P.depth)) < 0.55
