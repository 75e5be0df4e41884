"""Convolutions on worker processes: identical results, exact counts per worker, failures, shutdown."""

import os
import signal

import numpy as np
import pytest

from heconv.backends.base import OpCounts
from heconv.backends.plain import PlainBackend
from heconv.conv import compile_conv, encrypt_input, plan_conv, run_conv
from heconv.parallel import ConvPool, WorkerError
from heconv.parallel_plan import plan_parallel


def _exact_data(rng, c_out, c_in, hw, k=3):
    """Quarter-integer weights and inputs: every float sum is exact, so the cleartext backend's
    regrouped sums are bit-identical too (SEAL's modular sums are exact anyway)."""
    return rng.integers(-2, 3, (c_out, c_in, k, k)) / 4.0, rng.integers(-4, 5, (c_in, hw, hw)) / 4.0


def _layer(backend, w, bias, x, schedule):
    plan = plan_conv(w, x.shape[1], x.shape[2], backend.params, has_bias=bias is not None, schedule=schedule)
    backend.generate_galois_keys(plan.rotation_steps)
    layer = compile_conv(plan, w, bias, backend)
    return plan, layer, encrypt_input(x, plan.packing, backend)


def _gone(pid: int) -> bool:
    """No such process, not even a zombie."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read().lower()  # pid reused by someone else: not ours
    except FileNotFoundError:
        return True


# c_in, c_out, hw, schedule: one output block split between workers; several blocks; B > 1; ragged channels
CASES = [(16, 16, 8, "output-rotation"), (32, 32, 16, "auto"), (16, 32, 8, "bsgs:4"), (5, 24, 8, "bsgs:2")]


@pytest.mark.parametrize("c_in, c_out, hw, schedule", CASES)
def test_two_workers_decrypt_identically_and_count_the_split(backend, c_in, c_out, hw, schedule):
    rng = np.random.default_rng(c_in * c_out)
    w, x = _exact_data(rng, c_out, c_in, hw)
    bias = rng.integers(-4, 5, c_out) / 8.0
    plan, layer, inputs = _layer(backend, w, bias, x, schedule)
    backend.reset_counter()
    serial = [backend.decrypt(c) for c in run_conv(layer, inputs, backend)]
    assert backend.reset_counter() - OpCounts(decryptions=len(serial)) == plan.predicted
    split = plan_parallel(plan, 2, "slot")
    assert split.workers == 2
    with ConvPool(backend, {"conv": (layer, split)}) as pool:
        for _ in range(2):  # the pool serves run after run
            out = pool.run("conv", inputs)
            counts = backend.reset_counter()
            assert [backend.decrypt(c).tolist() for c in out] == [s.tolist() for s in serial]
            backend.reset_counter()
            # every worker counted what the split predicted; the totals add up to the plan's
            assert pool.last.worker_counts() == split.worker_counts()
            assert counts == pool.last.total == split.predicted
            assert split.predicted - OpCounts(rotations=split.extra_rotations, key_switches=split.extra_rotations) \
                == plan.predicted
            assert pool.last.transfer_bytes > 0 and pool.last.transfer_s > 0
        pids = pool.pids
    assert all(_gone(pid) for pid in pids) and not os.path.exists(pool.folder)


def test_split_covers_every_term_once_and_predicts_each_worker():
    from heconv.params import ckks_params

    rng = np.random.default_rng(3)
    w = rng.normal(size=(64, 48, 3, 3))
    w[:, :, 0, 0] = 0.0
    w[16:32] = 0.0  # an empty output block: worker 0 encrypts its bias
    plan = plan_conv(w, 16, 16, ckks_params(depth=1), has_bias=True, schedule="bsgs:2")  # c_n = 16: 4 blocks
    for workers in (1, 2, 3, 5):
        split = plan_parallel(plan, workers, "slot")
        assert split.workers == workers
        assert [s.start for s in split.shares[1:]] == [s.end for s in split.shares[:-1]]
        assert (split.shares[0].start, split.shares[-1].end) == (0, len(plan.terms))
        group = [(t.bo, t.d // plan.baby_step) for t in plan.terms]
        assert all(group[s.start - 1] != group[s.start] for s in split.shares[1:])  # no (bo, g) group is cut
        finals = sorted(bo for s in split.shares for bo in s.finals)
        assert sorted(finals + split.merged + plan.empty_outputs) == list(range(plan.packing.n_out))
        assert split.merge.encryptions == len(plan.empty_outputs) == 1
        baby = sum(len(v) for s in split.shares for v in s.input_shifts) - sum(len(v) for v in plan.input_shifts)
        assert split.extra_rotations == baby >= (0 if workers == 1 else 1)
        assert sum(split.worker_counts(), OpCounts()) == split.predicted
        assert split.predicted.pmuls == plan.predicted.pmuls and split.predicted.adds == plan.predicted.adds


def test_workers_are_at_most_the_giant_step_groups():
    from heconv.params import ckks_params

    plan = plan_conv(np.ones((4, 4, 1, 1)), 8, 8, ckks_params(depth=1), schedule="input-rotation")  # one group
    assert plan_parallel(plan, 4, "slot").workers == 1
    plan = plan_conv(np.ones((16, 16, 3, 3)), 8, 8, ckks_params(depth=1))  # 16 groups
    assert plan_parallel(plan, 64, "slot").workers == 16
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=rf"layer conv: workers must be a positive integer, got {bad!r}"):
            plan_parallel(plan, bad, "slot")


def _pool(params, workers=2, backend=None):
    backend = backend or PlainBackend(params)
    w, x = _exact_data(np.random.default_rng(0), 16, 16, 8)
    plan, layer, inputs = _layer(backend, w, None, x, "output-rotation")
    return ConvPool(backend, {"conv": (layer, plan_parallel(plan, workers, "slot"))}), inputs


def test_a_dead_worker_is_an_error_and_the_pool_shuts_down(params):
    pool, inputs = _pool(params, 3)
    victim, other = pool.children[0], pool.children[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.process.join(5)
    with pytest.raises(WorkerError, match=rf"layer conv: worker 1 \(pid {victim.pid}\) died with exit code -9"):
        pool.run("conv", inputs)
    assert pool.closed and _gone(victim.pid) and _gone(other.pid) and not os.path.exists(pool.folder)
    with pytest.raises(WorkerError, match="the worker pool is closed"):
        pool.run("conv", inputs)


class _FailingInChildren(PlainBackend):
    """Loads ciphertexts only in the process that made it: a worker's share raises."""

    def __init__(self, params):
        super().__init__(params)
        self.home = os.getpid()

    def load_ciphertext(self, path):
        if os.getpid() != self.home:
            raise ValueError("no loading in a worker")
        return super().load_ciphertext(path)


def test_a_worker_exception_is_reported_with_its_traceback(params):
    pool, inputs = _pool(params, 2, _FailingInChildren(params))
    with pool:
        with pytest.raises(WorkerError,
                           match=r"(?s)layer conv: worker 1 \(pid \d+\):.*ValueError: no loading in a worker"):
            pool.run("conv", inputs)
        assert not os.listdir(pool.folder)  # the run's files are gone
        with pytest.raises(ValueError, match=r"layer other: not held by this pool \(it holds \['conv'\]\)"):
            pool.run("other", inputs)
        with pytest.raises(ValueError, match="layer conv: expected 1 input ciphertexts"):
            pool.run("conv", inputs * 2)
        pids = pool.pids
    assert all(_gone(pid) for pid in pids)


def test_a_forgotten_pool_is_reaped_when_collected(params):
    import gc

    pool, _ = _pool(params, 2)
    pids, folder = pool.pids, pool.folder
    del pool
    gc.collect()
    assert all(_gone(pid) for pid in pids) and not os.path.exists(folder)


class _BrokenInChildren(PlainBackend):
    """Multiplies only in the process that made it: a worker fails while touching its plaintexts."""

    def __init__(self, params):
        super().__init__(params)
        self.home = os.getpid()

    def multiply_plain(self, ct, plain):
        if os.getpid() != self.home:
            raise RuntimeError("no multiplying in a worker")
        return super().multiply_plain(ct, plain)


def test_a_worker_failing_at_start_up_fails_the_pool(params):
    backend = _BrokenInChildren(params)
    w, x = _exact_data(np.random.default_rng(0), 16, 16, 8)
    plan, layer, _ = _layer(backend, w, None, x, "output-rotation")
    with pytest.raises(WorkerError, match=r"(?s)start-up: worker 1 \(pid (\d+)\):.*RuntimeError: no multiplying") as e:
        ConvPool(backend, {"conv": (layer, plan_parallel(plan, 2, "slot"))})
    pid = int(__import__("re").search(r"pid (\d+)", str(e.value)).group(1))
    assert _gone(pid) and backend.counter == OpCounts(encodes=plan.predicted.pmuls + 1, encryptions=1)
