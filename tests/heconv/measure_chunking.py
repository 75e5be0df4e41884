"""Predict a model's traffic and end-to-end time under each chunking objective, from its plans alone
(nothing is encrypted): the coefficient algorithm's chunking chosen for end to end at each rate,
against the server-time rule, with the slot engine's output-rotation and auto plans beside them.

    PYTHONPATH=. python tests/heconv/measure_chunking.py [--model resnet18] [--input-size 16]

Prints one JSON line per plan: ciphertexts and MB each way (SEAL's words uncompressed, what a
cleartext run counts), and the predicted phases and end-to-end seconds at 1 Gbit/s and 100 Mbit/s
(planning unit and wire costs, heconv.cost). Not a test (no test_ prefix): a measurement kept so
it can be rerun.
"""

from __future__ import annotations

import argparse
import json

import torch

import models
from heconv.frontend import lower_model
from heconv.network import plan_network
from heconv.network.traffic import plan_traffic, predict_phases
from heconv.params import params_for_input
from heconv.traffic import Objective

RATES = {"1gbit": 1e9, "100mbit": 1e8}
PLANS = {"coefficient, server-time rule": ("coefficient", Objective(kind="server")),
         "coefficient, end to end at 1gbit": ("coefficient", Objective(1e9)),
         "coefficient, end to end at 100mbit": ("coefficient", Objective(1e8)),
         "slot, output-rotation": ("slot", None), "slot, auto": ("slot", None)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--input-size", type=int, default=16)
    args = p.parse_args()
    torch.manual_seed(0)
    shape = (3, args.input_size, args.input_size)
    net = lower_model(models.build_model(args.model, 3, 10).eval(), shape)
    params = params_for_input(*shape[1:])
    for label, (algorithm, objective) in PLANS.items():
        schedule = "auto" if label.endswith("auto") else "output-rotation"
        plan = plan_network(net, params, schedule=schedule, algorithm=algorithm, objective=objective)
        t, ph = plan_traffic(plan), predict_phases(plan)
        print(json.dumps({"model": args.model, "input_size": args.input_size, "plan": label,
                          "ciphertexts_in": t["ciphertexts_in"], "ciphertexts_out": t["ciphertexts_out"],
                          "upload_mb": t["upload_bytes"] / 1e6, "download_mb": t["download_bytes"] / 1e6,
                          "client_s": ph.client_s, "server_floor_s": ph.server_s, "server_io_s": ph.server_io_s,
                          **{f"end_to_end_s_{k}": ph.end_to_end_s(v) for k, v in RATES.items()}}))


if __name__ == "__main__":
    main()
