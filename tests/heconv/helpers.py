"""Small shared helpers for the heconv tests."""

import numpy as np

from heconv.conv import compile_conv, decrypt_output, encrypt_input, plan_conv, run_conv
from heconv.geometry import diagonal_index, group_ids, positional_index, schedule_group_ids


def kaiming(rng, c_out, c_in, k):
    return rng.normal(0.0, np.sqrt(2.0 / (c_in * k * k)), (c_out, c_in, k, k))


def run_layer(backend, weight, bias, x, stride=1, schedule="output-rotation"):
    """Plan, key, compile and run one layer; return (plan, output, run counts)."""
    h, w = x.shape[1:]
    plan = plan_conv(weight, h, w, backend.params, stride=stride, has_bias=bias is not None, schedule=schedule)
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_conv(plan, weight, bias, backend)
    inputs = encrypt_input(x, plan.packing, backend)
    backend.reset_counter()
    outputs = run_conv(layer, inputs, backend)
    counts = backend.reset_counter()
    return plan, decrypt_output(outputs, plan, backend), counts


def zero_groups(w, c_n, rng, frac_diag=0.0, frac_pos=0.0, frac_plain=0.0):
    """Zero random diagonal groups, positional groups and single plaintexts."""
    w = w.copy()
    g = group_ids(w.shape, c_n)
    for ids, frac in ((g.diagonal, frac_diag), (g.positional, frac_pos), (g.plaintext, frac_plain)):
        u = np.unique(ids)
        dead = rng.choice(u, int(frac * len(u)), replace=False)
        w[np.isin(ids, dead)] = 0.0
    return w


def expected_rotations(w, c_n, hw):
    """Independent count from the weights: kept non-centre positions + kept d != 0 diagonals.

    Valid when every filter position has its own shift (W >= k).
    """
    c_out, c_in, k, _ = w.shape
    bo, d = diagonal_index(c_out, c_in, c_n)
    bi, pos = positional_index(c_out, c_in, k, c_n)
    nz = w != 0
    centre = (k * k) // 2
    positions = np.unique((bi * k * k + pos)[nz & (pos != centre)])
    diag_nz = nz.any(axis=(2, 3))
    diagonals = np.unique((bo * c_n + d)[diag_nz & (d != 0)])
    return len(positions) + len(diagonals)


def zero_schedule_groups(w, c_n, baby_step, rng, frac_giant=0.0, frac_baby=0.0):
    """Zero random giant-step (bo, g) and baby-step (bi, j, pos) groups of baby step B."""
    w = w.copy()
    g = schedule_group_ids(w.shape, c_n, baby_step)
    for ids, frac in ((g.giant, frac_giant), (g.baby, frac_baby)):
        u = np.unique(ids)
        w[np.isin(ids, rng.choice(u, int(frac * len(u)), replace=False))] = 0.0
    return w


def expected_schedule_rotations(w, c_n, baby_step):
    """Independent count under baby step B: kept baby groups but (j, pos) = (0, centre), plus
    kept giant groups but g = 0. Valid when every (j, pos) has its own shift (W >= k, P > 2*|sigma|)."""
    g = schedule_group_ids(w.shape, c_n, baby_step)
    nz = w != 0
    return int(g.baby_saves(np.unique(g.baby[nz])).sum() + g.giant_saves(np.unique(g.giant[nz])).sum())


def bn_model(name, seed=0, classes=10, in_channels=3, spread=0.1):
    """A model of the zoo in eval mode with non-trivial BatchNorm statistics (running means in
    [-spread, spread], variances in [0.5, 1.5]), so that folding is exercised."""
    import torch

    import models

    torch.manual_seed(seed)
    m = models.build_model(name, in_channels, classes)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-spread, spread)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()
