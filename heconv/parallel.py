"""Convolutions on several cores: worker processes forked after compile (heconv.parallel_plan splits).

tenseal.sealapi holds the GIL, so threads give nothing; processes do. `ConvPool` forks its
workers once the layers are compiled: every child inherits the backend (keys, context)
and the encoded plaintexts without copying them (copy-on-write), and waits for layers to
run. Worker 0 is the calling process itself, so `workers` processes compute in all.

A run ships what each child reads and brings back what it made, by the backend's own
serialization through files in a temporary folder (tmpfs where there is one): worker 0
saves each input ciphertext a child needs once, the child loads it, computes its share
(`run_share`: the same arithmetic as the algorithm's `run`, on its terms), and saves its
outputs (finished, or partial sums to merge) for worker 0 to load. Decryptions equal the
single-process run's exactly (CKKS additions are exact modular arithmetic; in the
cleartext backend float sums are regrouped, equal when the values sum exactly).

The counts of every worker are added into the backend's counter, so a caller sees the
run's total; `ConvPool.last` keeps them per worker with the transfer cost.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import tempfile
import time
import traceback
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing import connection, get_context
from typing import Any

import numpy as np

from .backends.base import Backend, OpCounts
from .cost import UnitCosts, floor_seconds
from .parallel_plan import ParallelPlan


class WorkerError(RuntimeError):
    """A worker process failed (its traceback in the message) or died."""


def _algorithm(split: ParallelPlan) -> Any:
    """The registered algorithm whose hooks run the split's shares (heconv.algorithms.base.ConvAlgorithm)."""
    from .algorithms import get_algorithm  # imported late: the registry's modules import heconv.parallel_plan

    return get_algorithm(split.algorithm)


def run_share(layer: Any, split: ParallelPlan, worker: int, inputs: Mapping[int, Any],
              backend: Backend) -> dict[int, Any]:
    """Worker `worker`'s share of a compiled layer: its baby steps, its (bo, g) groups, and its finals
    finished (the split's algorithm's `run_share`). Returns {bo: ciphertext}: finished outputs for
    `share.finals`, partial sums for the rest."""
    share = split.shares[worker]
    missing = sorted(set(share.inputs) - set(inputs))
    if missing:
        raise ValueError(f"layer {layer.plan.spec.name}: worker {share.worker} needs input ciphertexts {missing}")
    return _algorithm(split).run_share(layer, share, inputs, backend)


@dataclass
class ParallelRun:
    """One parallel run of a layer, per worker.

    counts[w]: worker w's share (worker 0's without the merge); merge: worker 0's work after
    the shares; compute_s[w]: its share's evaluation alone; cpu_s: CPU time of all workers
    (children_cpu_s: of the forked ones); transfer_bytes: ciphertext bytes written; transfer_s:
    serialization on the critical path (worker 0's saves of the inputs + the slowest child's loads
    and saves + worker 0's loads of the results).
    """

    layer: str
    workers: int
    counts: list[OpCounts]
    merge: OpCounts
    compute_s: list[float]
    cpu_s: float
    transfer_bytes: int
    transfer_s: float
    wall_s: float = 0.0
    children_cpu_s: float = 0.0

    @property
    def total(self) -> OpCounts:
        return sum(self.counts, OpCounts()) + self.merge

    def worker_counts(self) -> list[OpCounts]:
        """Counts per worker, worker 0's including the merge."""
        return [c + (self.merge if w == 0 else OpCounts()) for w, c in enumerate(self.counts)]

    def floors(self, unit: UnitCosts) -> list[float]:
        """Each worker's op floor (counts x unit costs)."""
        return [floor_seconds(c, unit) for c in self.worker_counts()]

    def floor(self, unit: UnitCosts) -> float:
        """The floor of the parallel run: the larger worker's op floor plus the measured transfer cost."""
        return max(self.floors(unit)) + self.transfer_s


@dataclass
class _Child:
    worker: int
    process: Any
    conn: Any
    pid: int = field(init=False)

    def __post_init__(self) -> None:
        self.pid = self.process.pid


def _touch(backend: Backend, layers: Mapping[str, tuple[Any, ParallelPlan]], worker: int,
           dummies: Mapping[int, Any]) -> None:
    """Read, once, every plaintext and Galois key this worker's shares use.

    A forked child's page-table entries start "not accessed", and the first touch of each
    page costs a page walk: about 20% of a layer's first run. Done here, at start-up, it
    stays out of the timed runs (the in-process path has no such cost to pay).
    """
    for layer, split in layers.values():
        if worker >= split.workers:
            continue
        x = dummies[(layer.plan.level, layer.plan.input_scale_bits)]
        plains, steps = _algorithm(split).share_resources(layer, split.shares[worker])
        for plain in plains:
            backend.multiply_plain(x, plain)
        for step in sorted(steps):
            backend.rotate(x, step)
    backend.reset_counter()


def _serve(conn, others: list, worker: int, backend: Backend,
           layers: Mapping[str, tuple[Any, ParallelPlan]], folder: str, dummies: Mapping[int, Any]) -> None:
    """A child's loop: touch its plaintexts and keys, say so, then run the shares it is sent
    until told to stop (or the parent goes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    for c in others:
        c.close()
    try:
        _touch(backend, layers, worker, dummies)
        conn.send(("ready",))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        conn.close()
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg[0] == "stop":
            break
        _, name, paths, tag = msg
        try:
            cpu = time.process_time()
            layer, split = layers[name]
            t = time.perf_counter()
            inputs = {bi: backend.load_ciphertext(p) for bi, p in paths.items()}
            load_s = time.perf_counter() - t
            backend.reset_counter()
            t = time.perf_counter()
            out = run_share(layer, split, worker, inputs, backend)
            compute_s = time.perf_counter() - t
            counts = backend.reset_counter()
            t, saved, written = time.perf_counter(), {}, 0
            for bo, ct in out.items():
                saved[bo] = os.path.join(folder, f"{tag}-w{worker}-y{bo}.ct")
                written += backend.save_ciphertext(ct, saved[bo])
            save_s = time.perf_counter() - t
            conn.send(("ok", saved, counts.to_dict(), compute_s, load_s, save_s, written, time.process_time() - cpu))
        except Exception:  # reported to the parent, which raises WorkerError
            conn.send(("error", traceback.format_exc()))
    conn.close()


def _shutdown(children: list[_Child], folder: str) -> None:
    for c in children:
        try:
            c.conn.send(("stop",))
        except (OSError, ValueError):
            pass
    for c in children:
        c.process.join(timeout=5)
        if c.process.is_alive():
            c.process.terminate()
            c.process.join(timeout=5)
        if c.process.is_alive():
            c.process.kill()
            c.process.join()
        c.conn.close()
    children.clear()
    shutil.rmtree(folder, ignore_errors=True)


def _transfer_folder() -> str:
    shm = "/dev/shm"
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="heconv-pool-", dir=base)


class ConvPool:
    """Compiled convolutions run by `workers` processes: this one (worker 0) and forked children.

    Create it after compiling (the children inherit what exists at that moment); `run`
    replaces `run_conv` for the layers it holds; `close` (or the context manager, or
    garbage collection) stops the children and removes the transfer folder.
    """

    def __init__(self, backend: Backend, layers: Mapping[str, tuple[Any, ParallelPlan]]):
        for name, (layer, split) in layers.items():
            if split.layer != layer.plan.spec.name:
                raise ValueError(f"layer {name}: its split was made for layer {split.layer}")
        self.backend = backend
        self.layers = dict(layers)
        self.workers = max((split.workers for _, split in self.layers.values()), default=1)
        self.last: ParallelRun | None = None
        self._runs = 0
        self.folder = _transfer_folder()
        self.children: list[_Child] = []
        ctx = get_context("fork")
        saved = backend.counter.copy()
        zeros = np.zeros(backend.slots)
        dummies = {(lv, bits): backend.encrypt_plain(backend.encode(zeros, lv, None if bits is None else 2.0 ** bits))
                   for lv, bits in {(layer.plan.level, layer.plan.input_scale_bits)  # at each layer's input
                                    for layer, _ in self.layers.values()}}  # (the children's first touch)
        backend.counter = saved
        gc.collect()
        gc.freeze()  # children's collections leave the inherited objects (and their pages) alone
        try:
            for w in range(1, self.workers):
                mine, theirs = ctx.Pipe()
                others = [c.conn for c in self.children] + [mine]
                p = ctx.Process(target=_serve, args=(theirs, others, w, backend, self.layers, self.folder, dummies),
                                name=f"heconv-worker-{w}", daemon=True)
                p.start()
                theirs.close()
                self.children.append(_Child(w, p, mine))
        except BaseException:
            _shutdown(self.children, self.folder)
            raise
        finally:
            gc.unfreeze()
        self._finalizer = weakref.finalize(self, _shutdown, self.children, self.folder)
        try:
            self._collect(self.children, "start-up", "ready")
        except BaseException:
            self.close()
            raise

    @property
    def pids(self) -> list[int]:
        """Process ids of the children (worker 0 is this process)."""
        return [c.pid for c in self.children]

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Stop and reap every child; remove the transfer folder. Idempotent."""
        self._finalizer()

    def __enter__(self) -> "ConvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _dead(self, child: _Child, where: str) -> WorkerError:
        child.process.join(timeout=1)
        code = child.process.exitcode
        self.close()
        return WorkerError(f"{where}: worker {child.worker} (pid {child.pid}) died"
                           f"{'' if code is None else f' with exit code {code}'}; the pool is closed")

    def run(self, name: str, inputs: list[Any]) -> list[Any]:
        """The layer's n_out output ciphertexts, computed by the pool's workers; counts go to the backend."""
        if name not in self.layers:
            raise ValueError(f"layer {name}: not held by this pool (it holds {sorted(self.layers)[:5]})")
        if self.closed:
            raise WorkerError(f"layer {name}: the worker pool is closed")
        layer, split = self.layers[name]
        _algorithm(split).check_inputs(layer, inputs, self.backend)
        self._runs += 1
        tag = f"r{self._runs}"
        try:
            return self._run(name, layer, split, inputs, tag)
        finally:
            if os.path.isdir(self.folder):
                for entry in os.scandir(self.folder):
                    if entry.name.startswith(tag + "-"):
                        os.unlink(entry.path)

    def _run(self, name: str, layer: Any, split: ParallelPlan, inputs: list[Any], tag: str) -> list[Any]:
        b = self.backend
        wall, cpu = time.perf_counter(), time.process_time()
        children = self.children[: split.workers - 1]
        # 1. every input a child reads, saved once
        t, paths, written = time.perf_counter(), {}, 0
        for bi in sorted({bi for s in split.shares[1:] for bi in s.inputs}):
            paths[bi] = os.path.join(self.folder, f"{tag}-x{bi}.ct")
            written += b.save_ciphertext(inputs[bi], paths[bi])
        save_in_s = time.perf_counter() - t
        for c in children:
            try:
                c.conn.send(("run", name, {bi: paths[bi] for bi in split.shares[c.worker].inputs}, tag))
            except OSError:
                raise self._dead(c, f"layer {name}") from None
        # 2. worker 0's share, here (on failure the children are still waited for)
        outer = b.reset_counter()
        t = time.perf_counter()
        try:
            mine = run_share(layer, split, 0, dict(enumerate(inputs)), b)
        except BaseException:
            b.counter = outer + b.reset_counter()
            try:
                self._collect(children, f"layer {name}")
            except WorkerError:
                pass
            raise
        own = b.reset_counter()
        b.counter = outer + own
        compute = [time.perf_counter() - t]
        # 3. the children's results
        replies = self._collect(children, f"layer {name}")
        counts, results, child_io, child_cpu = [own], [mine], [0.0], 0.0
        t = time.perf_counter()
        for c in children:
            saved, cnt, comp_s, load_s, save_s, n_bytes, cpu_s = replies[c.worker]
            results.append({bo: b.load_ciphertext(p) for bo, p in saved.items()})
            counts.append(OpCounts(**cnt))
            compute.append(comp_s)
            child_io.append(load_s + save_s)
            written += n_bytes
            child_cpu += cpu_s
        load_out_s = time.perf_counter() - t
        # 4. merge split outputs, encrypt empty ones
        outer = b.reset_counter()
        outputs = self._merge(layer, split, results)
        merge = b.reset_counter()
        b.counter = outer + merge + sum(counts[1:], OpCounts())
        self.last = ParallelRun(name, split.workers, counts, merge, compute,
                                time.process_time() - cpu + child_cpu, written,
                                save_in_s + max(child_io) + load_out_s, time.perf_counter() - wall, child_cpu)
        return outputs

    def _collect(self, children: list[_Child], where: str, expect: str = "ok") -> dict[int, tuple]:
        """Wait for every child's reply (`expect`: its tag); a failure is raised once all have answered."""
        pending = {c.conn: c for c in children}
        sentinels = {c.process.sentinel: c for c in children}
        replies: dict[int, tuple] = {}
        errors = []
        while pending:
            ready = connection.wait(list(pending) + [s for s, c in sentinels.items() if c.conn in pending])
            for r in ready:
                c = pending.get(r) or sentinels[r]
                if c.conn not in pending:
                    continue
                if r is c.conn or c.conn.poll():
                    try:
                        reply = c.conn.recv()
                    except (EOFError, OSError):
                        raise self._dead(c, where) from None
                    del pending[c.conn]
                    if reply[0] == expect:
                        replies[c.worker] = reply[1:]
                    else:
                        errors.append(f"worker {c.worker} (pid {c.pid}):\n{reply[1]}")
                else:
                    raise self._dead(c, where)
        if errors:
            raise WorkerError(f"{where}: " + "\n".join(errors))
        return replies

    def _merge(self, layer: Any, split: ParallelPlan, results: list[dict[int, Any]]) -> list[Any]:
        b, alg = self.backend, _algorithm(split)
        outputs: list[Any] = [None] * len(layer.outputs)
        merged = set(split.merged)
        for share, res in zip(split.shares, results):
            for bo in share.finals:
                outputs[bo] = res[bo]
        for bo in split.merged:
            parts = [res[bo] for res in results if bo in res]
            y = parts[0]
            for part in parts[1:]:
                b.add_inplace(y, part)
            alg.finish_output(layer, bo, y, b)
            outputs[bo] = y
        for bo in range(len(outputs)):
            if outputs[bo] is None and bo not in merged:
                outputs[bo] = alg.empty_output(layer, bo, b)
        return outputs
