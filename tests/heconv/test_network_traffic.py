"""A network plan predicts its traffic exactly: a cleartext run counts the ciphertexts and bytes the
plan's uploads and refreshes say, for both algorithms and both kinds of upload; and the coefficient
plan's chunking at a given bandwidth sends less than the server-time rule did."""

import numpy as np
import pytest
import torch

import models
from bench.harness.model import measure_model, prepare_model
from heconv.frontend import lower_model
from heconv.network import plan_network
from heconv.network.traffic import plan_traffic, predict_phases
from heconv.params import params_for_input
from heconv.traffic import Objective


def _model(name, channels=3):
    torch.manual_seed(0)
    return models.build_model(name, channels, 10).eval()


CASES = [("small-cnn", "slot", "seeded"), ("small-cnn", "coefficient", "public"), ("resnet18", "coefficient", "seeded"),
         ("resnet18", "slot", "public")]


@pytest.mark.parametrize("name, algorithm, upload", CASES)
def test_the_plan_predicts_the_counted_traffic(name, algorithm, upload):
    shape = (1, 8, 8) if name == "small-cnn" else (3, 16, 16)
    model = _model(name, shape[0])
    prep = prepare_model(model, shape, params_for_input(*shape[1:]), mode="count", algorithm=algorithm,
                         upload=upload, bandwidth_bps=1e8)
    r = measure_model(prep, model, np.zeros((1,) + shape), check_bounds=False, bandwidth_bps=1e8)
    t = plan_traffic(prep.plan, upload)
    assert (t["ciphertexts_in"], t["ciphertexts_out"]) == (r.ciphertexts_in, r.ciphertexts_out)
    assert (t["upload_bytes"], t["download_bytes"]) == (r.upload_bytes, r.download_bytes)
    assert r.predicted_phases["upload_bytes"] == r.upload_bytes and r.counts_match_plan
    assert r.predicted_end_to_end_s == pytest.approx(predict_phases(prep.plan, upload).end_to_end_s(1e8))


def test_resnet18_end_to_end_chunking_sends_far_less_than_the_server_rule():
    net = lower_model(_model("resnet18"), (3, 16, 16))
    params = params_for_input(16, 16)
    plans = {kind: plan_network(net, params, algorithm="coefficient", objective=Objective(1e8, kind=kind))
             for kind in ("server", "end-to-end")}
    old, new = (predict_phases(plans[k]) for k in ("server", "end-to-end"))
    assert new.upload_bytes < old.upload_bytes / 3
    assert new.end_to_end_s(1e8) < old.end_to_end_s(1e8) and new.end_to_end_s(1e9) < old.end_to_end_s(1e9)
    assert old.server_s < new.server_s  # what the old rule minimised
