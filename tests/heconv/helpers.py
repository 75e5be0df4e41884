"""Small shared helpers for the heconv tests."""

import numpy as np

from heconv.conv import compile_conv, decrypt_output, encrypt_input, plan_conv, run_conv


def kaiming(rng, c_out, c_in, k):
    return rng.normal(0.0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k))


def run_layer(backend, weight, bias, x, stride=1):
    """Plan, key, compile and run one layer; return (plan, output, run counts)."""
    h, w = x.shape[1:]
    plan = plan_conv(weight, h, w, backend.params, stride=stride, has_bias=bias is not None)
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_conv(plan, weight, bias, backend)
    inputs = encrypt_input(x, plan.packing, backend)
    backend.reset_counter()
    outputs = run_conv(layer, inputs, backend)
    counts = backend.reset_counter()
    return plan, decrypt_output(outputs, plan, backend), counts
