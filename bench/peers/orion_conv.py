"""Orion (Ebel et al., ASPLOS 2025; PyPI `orion-fhe`, CKKS on Lattigo) on one convolution.

Orion compiles a PyTorch network: a conv becomes the matrix-vector product of its
Toeplitz matrix, cut into (slots x slots) blocks, one per (output, input) ciphertext pair,
each evaluated by Lattigo's baby-step/giant-step linear transform with hoisted baby steps.

- `prepare_orion_conv` does all of Orion's set-up (nothing of it is timed): the scheme with
  our ring dimension, primes and scale (`orion_config`), a network holding the conv alone,
  `orion.fit`, `orion.compile` (diagonals, plaintexts, Galois keys), the encrypted input;
- `run_orion_conv` is the timed part: the compiled conv's forward on the ciphertext (per
  output ciphertext, the blocks' transforms, their sum and one rescale; the bias;
  Orion's "hybrid" output rotations, none on the shapes benchmarked);
- `orion_record` decrypts once and checks the output against torch.nn.functional.conv2d.

The module named `orion` is imported inside the functions, so this one loads without it
(and is not itself named orion.py, which would shadow the package). Orion keeps its scheme in
a process-wide singleton: one prepared layer at a time, `close()` it before the next.
"""

from __future__ import annotations

import contextlib
import gc
import io
import resource
import time
import weakref
from dataclasses import dataclass, field
from importlib import metadata
from importlib.util import find_spec
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from heconv.params import CKKSParams

from ..harness.layer import INPUT_BOUND, torch_conv

ORION_DIST = "orion-fhe"
# The README's advice: an environment of its own that sees .venv's packages (orion-fhe 1.0.2 needs
# scipy <= 1.14.1, which would downgrade .venv's), run from it.
INSTALL_HINT = ("give Orion its own environment as the README's 'Beside Orion' says (python -m venv ../venv-orion; "
                "a .pth file naming .venv's site-packages; ../venv-orion/bin/pip install --no-deps 'orion-fhe>=1.0' "
                "'scipy==1.14.1' h5py) and run ../venv-orion/bin/python -m pytest --benchmark-only "
                "bench/test_peers.py")
# Orion's and Lattigo's default secret: sparse ternary of Hamming weight 192 (SEAL's is dense).
# It changes no operation's cost; recorded in every case.
HAMMING_WEIGHT = 192
EXTRA_WORK = "none: the network holds the conv alone (no activation, no batch norm, no bootstrap)"
TIMED = ("the compiled Orion Conv2d's forward on the encrypted input: per output ciphertext, the blocks' "
         "Lattigo BSGS linear transforms (hoisted baby steps), their sum and one rescale; the bias; the "
         "hybrid embedding's output rotations (Python bookkeeping of Orion included)")
_active: list["PreparedOrionConv"] = []


def orion_version() -> str | None:
    """The installed orion-fhe's version; None when it (or its module `orion`) is missing."""
    try:
        version = metadata.version(ORION_DIST)
    except metadata.PackageNotFoundError:
        return None
    return version if find_spec("orion") is not None else None


def orion_config(params: CKKSParams) -> dict:
    """Orion's configuration for our parameters: the same ring, primes and scale. SEAL's last
    prime is its key-switching prime, Lattigo's P; the others are Q.

    >>> from heconv.params import ckks_params
    >>> orion_config(ckks_params(depth=1))["ckks_params"]
    {'LogN': 13, 'LogQ': [60, 40], 'LogP': [60], 'LogScale': 40, 'H': 192, 'RingType': 'standard'}
    """
    bits = list(params.coeff_mod_bit_sizes)
    if len(bits) < 3:
        raise ValueError(f"Orion needs at least one level: coeff_mod_bit_sizes {bits} has no prime between the "
                         "first and the special one")
    return {"ckks_params": {"LogN": params.poly_modulus_degree.bit_length() - 1, "LogQ": bits[:-1],
                            "LogP": bits[-1:], "LogScale": params.scale_bits, "H": HAMMING_WEIGHT,
                            "RingType": "standard"},
            "orion": {"margin": 2, "embedding_method": "hybrid", "backend": "lattigo", "fuse_modules": True,
                      "debug": False, "io_mode": "none", "diags_path": "", "keys_path": ""}}


@dataclass(eq=False)  # compared by identity (its arrays have no truth value)
class PreparedOrionConv:
    """One conv compiled by Orion, its encrypted input, and what its set-up made."""

    net: Any
    conv: Any  # the orion.nn.Conv2d, compiled, in HE mode
    ciphertext: Any  # orion CipherTensor
    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    stride: int
    params: CKKSParams
    input_level: int
    setup_s: float
    block_keys: list[int]  # Galois keys each block's transform uses
    galois_keys: int  # distinct, over all blocks
    outputs: weakref.WeakSet = field(default_factory=weakref.WeakSet)  # the runs' output tensors still alive

    @property
    def blocks(self) -> int:
        return len(self.conv.transform_ids)

    @property
    def input_ciphertexts(self) -> int:
        return len(self.ciphertext.ids)

    @property
    def output_ciphertexts(self) -> int:
        return self.blocks // self.input_ciphertexts

    def close(self) -> None:
        """Free Orion's scheme (keys, plaintexts, ciphertexts) so that another layer can be prepared."""
        if not any(p is self for p in _active):
            return
        import orion

        _active[:] = [p for p in _active if p is not self]
        # Orion's tensors and transforms free their Lattigo objects by id when collected; ids restart
        # with the next scheme, so any still held elsewhere (a run's output) must forget theirs first.
        for tensor in [*self.outputs, self.ciphertext]:
            tensor.ids = []
        self.conv.transform_ids = {}
        self.net = self.conv = self.ciphertext = None
        gc.collect()
        orion.delete_scheme()  # frees every key, plaintext and ciphertext of the scheme


def _one_conv_net(on, c_in: int, c_out: int, k: int, stride: int, has_bias: bool):
    class MidNetworkConv2d(on.Conv2d):
        """Packed as a conv inside a network: Orion packs a network's last linear layer "square"
        (no output rotations, more diagonals when the output is smaller than the slots)."""

        def generate_diagonals(self, last):
            super().generate_diagonals(last=False)

    class OneConv(on.Module):
        def __init__(self):
            super().__init__()
            self.conv = MidNetworkConv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=has_bias)

        def forward(self, x):
            return self.conv(x)

    return OneConv()


def prepare_orion_conv(weight: np.ndarray, bias: np.ndarray | None, height: int, width: int, stride: int,
                       params: CKKSParams, seed: int = 0, x: np.ndarray | None = None) -> PreparedOrionConv:
    """Orion's set-up for one conv ('same' padding): scheme, fit, compile, encrypted input.

    `x` defaults to the input `bench.harness.layer.prepare_layer` draws for the same seed
    (uniform in [-1, 1]), so both engines see the same weights and the same input.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        raise ValueError(f"weight: expected [C_out, C_in, k, k] with k odd, got shape {list(w.shape)}")
    c_out, c_in, k, _ = w.shape
    if bias is not None and np.shape(bias) != (c_out,):
        raise ValueError(f"bias: expected shape [{c_out}] (C_out), got {list(np.shape(bias))}")
    if x is None:
        x = np.random.default_rng(seed + 1).uniform(-INPUT_BOUND, INPUT_BOUND, (c_in, height, width))
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (c_in, height, width):
        raise ValueError(f"x: expected shape [{c_in}, {height}, {width}] (C_in, H, W), got {list(x.shape)}")
    if orion_version() is None:
        raise ImportError(f"orion-fhe is not installed: {INSTALL_HINT}")
    if _active:
        raise RuntimeError("an Orion layer is already prepared (Orion's scheme is process-wide): close() it first")
    import orion
    import orion.nn as on

    t = time.perf_counter()
    log = io.StringIO()  # Orion prints its progress; kept out of the benchmark's output
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        scheme = orion.init_scheme(orion_config(params))
        net = _one_conv_net(on, c_in, c_out, k, stride, bias is not None)
        with torch.no_grad():
            net.conv.weight.copy_(torch.from_numpy(w))
            if bias is not None:
                net.conv.bias.copy_(torch.from_numpy(np.asarray(bias, dtype=np.float64)))
        xt = torch.from_numpy(x).float()[None]
        net.eval()
        orion.fit(net, xt)
        level = orion.compile(net)
        ciphertext = orion.encrypt(orion.encode(xt, level))
        net.he()
    lt = scheme.lt_evaluator
    block_keys = [len(lt.get_required_rotation_keys(int(tid))) for tid in net.conv.transform_ids.values()]
    prep = PreparedOrionConv(net, net.conv, ciphertext, x, w, None if bias is None else np.asarray(bias, float),
                             stride, params, int(level), time.perf_counter() - t, block_keys,
                             len(lt.saved_rotation_keys))
    _active.append(prep)
    return prep


@dataclass
class OrionRun:
    output: Any  # orion CipherTensor
    wall_s: float
    cpu_s: float


def run_orion_conv(prep: PreparedOrionConv) -> OrionRun:
    """The timed part: the compiled conv on the encrypted input."""
    t, c = time.perf_counter(), time.process_time()
    out = prep.conv(prep.ciphertext)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    prep.outputs.add(out)
    return OrionRun(out, wall, cpu)


def decrypt_orion_output(prep: PreparedOrionConv, run: OrionRun) -> np.ndarray:
    """The output as [C_out, H_out, W_out]: decrypted, decoded, and un-multiplexed after a
    strided conv (Orion then packs gap^2 channels into each (gap*H_out x gap*W_out) map)."""
    y = run.output.decrypt().decode().reshape(prep.conv.fhe_output_shape)
    gap = int(prep.conv.output_gap)
    if gap > 1:
        y = F.pixel_unshuffle(y, gap)
    c_out = prep.weight.shape[0]
    _, _, h_out, w_out = prep.conv.output_shape
    return y[0, :c_out, :h_out, :w_out].double().numpy()


def orion_record(prep: PreparedOrionConv, run: OrionRun, runs: list[OrionRun] | None = None,
                 latency_s: float | None = None) -> dict:
    """Orion's figures for one layer (a benchmark's extra_info): shape, parameters, packing,
    Galois keys, latency, error against torch. Decrypts `run` once; `runs` (all timed rounds)
    give the CPU time; `latency_s` defaults to run's wall time."""
    runs = runs or [run]
    y = decrypt_orion_output(prep, run)
    ref = torch_conv(prep.x, prep.weight, prep.bias, prep.stride)
    c_out, c_in, k, _ = prep.weight.shape
    cfg = orion_config(prep.params)["ckks_params"]
    conv = prep.conv
    return {
        "peer": "orion", "engine": f"Orion {orion_version()} (Lattigo)", "orion_version": orion_version(),
        "c_in": c_in, "c_out": c_out, "hw": int(prep.x.shape[1]), "kernel": k, "stride": prep.stride,
        "poly_modulus_degree": prep.params.poly_modulus_degree,
        "coeff_mod_bit_sizes": list(prep.params.coeff_mod_bit_sizes),
        "orion_log_q": cfg["LogQ"], "orion_log_p": cfg["LogP"], "log_scale": cfg["LogScale"],
        "hamming_weight": cfg["H"], "ring_type": cfg["RingType"],
        "embedding": "hybrid, packed as a conv inside a network", "bsgs_ratio": float(conv.bsgs_ratio),
        "input_level": prep.input_level, "input_gap": int(conv.input_gap), "output_gap": int(conv.output_gap),
        "input_ciphertexts": prep.input_ciphertexts, "output_ciphertexts": prep.output_ciphertexts,
        "blocks": prep.blocks, "diagonals": int(sum(len(d) for d in conv.diagonals.values())),
        "galois_keys": prep.galois_keys, "block_galois_keys": prep.block_keys,
        "output_rotations": int(conv.output_rotations),
        # Lattigo counts nothing; each BSGS step of a block uses one of its Galois keys once
        "key_switches_estimate": int(sum(prep.block_keys) + conv.output_rotations * prep.output_ciphertexts),
        "latency_s": run.wall_s if latency_s is None else latency_s,
        "cpu_s": float(np.mean([r.cpu_s for r in runs])), "setup_s": prep.setup_s,
        "max_abs_error": float(np.abs(y - ref).max()), "max_abs_reference": float(np.abs(ref).max()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "extra_work": EXTRA_WORK, "timed": TIMED,
    }
