"""Complex packing for matvec (docs/design.md "Complex packing"): CKKS slots are complex, and a real
conv fills only their real parts. Pair the real blocks instead: input ciphertext a holds
Z = X[2a] + i X[2a+1] in slots [0, T) and conj(Z) in [T, 2T) (repeated with period 2T), and output
ciphertext c collects W = Y[2c] + i Y[2c+1]. With X[2a] = (Z + Z*)/2 and X[2a+1] = -i (Z - Z*)/2,

    W = sum over k:  A_k (*) Rot_k(Z) + B_k (*) Rot_k(Z*)
    A_k = (D00 - i D01 + i D10 + D11) / 2,   B_k = (D00 + i D01 + i D10 - D11) / 2

where D_{ro,ri} is diagonal k of the real pair (2c + ro, 2a + ri) (heconv.algorithms.matvec.geometry). A
rotation of the 2T-periodic input by d < T brings output position p (< T) Z[p + d] where p + d < T and
conj(Z)[p + d - T] where it crosses, and position T + p the other one; so one plaintext per diagonal
carries both A and B, and one more rotate-and-add (by T) folds the halves. A dense pair of real blocks
of period T costs its diagonals once, not four times: half the multiply-adds of the real packing at the
same ciphertext count. The client packs Z and reads W's real and imaginary parts.
Pure numpy: nothing here touches a backend.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .geometry import MatvecGeometry, diagonal_vectors, pair_diagonals


def real_view(geometry: MatvecGeometry) -> MatvecGeometry:
    """The geometry of the real blocks (one per ciphertext): every place of the real packing."""
    return dataclasses.replace(geometry, complex_pack=False) if geometry.complex_pack else geometry


def real_plan(plan):
    """The plan seen through `real_view`: what places a real block's values (its bias, its output layout)."""
    return dataclasses.replace(plan, geometry=real_view(plan.geometry)) if plan.geometry.complex_pack else plan


def real_pairs(geometry: MatvecGeometry, bo: int, bi: int) -> list[tuple[int, int, int, int]]:
    """(ro, ri, real output block, real input block) of ciphertext pair (bo, bi): itself without complex
    packing, else the (up to) four real pairs (2*bo + ro, 2*bi + ri) that exist.

    >>> from heconv.algorithms.matvec.geometry import matvec_geometry
    >>> g = matvec_geometry(6, 2, 2, 2, 1, 1, 16, c_n=2, complex_pack=True)   # 3 real input blocks, 2 outputs
    >>> real_pairs(g, 0, 1)
    [(0, 0, 0, 2), (1, 0, 1, 2)]
    """
    g = geometry
    if not g.complex_pack:
        return [(0, 0, bo, bi)]
    return [(ro, ri, 2 * bo + ro, 2 * bi + ri) for ro in (0, 1) for ri in (0, 1)
            if 2 * bo + ro < g.blocks_out and 2 * bi + ri < g.blocks_in]


def ciphertext_diagonals(weight: np.ndarray, geometry: MatvecGeometry, bo: int, bi: int,
                         shifts: np.ndarray | None = None, masks: np.ndarray | None = None) -> list[int]:
    """The nonzero diagonals of ciphertext pair (bo, bi): its real pair's, or the union of its four.

    >>> from heconv.algorithms.matvec.geometry import matvec_geometry
    >>> w = np.ones((256, 256, 3, 3))
    >>> len(ciphertext_diagonals(w, matvec_geometry(256, 256, 4, 4, 3, 1, 4096), 0, 0))   # 256 x 9 shifts
    2304
    >>> len(ciphertext_diagonals(w, matvec_geometry(256, 256, 4, 4, 3, 1, 4096, 128, complex_pack=True), 0, 0))
    1152
    """
    real = real_view(geometry)
    ks: set[int] = set()
    for _, _, rbo, rbi in real_pairs(geometry, bo, bi):
        ks.update(pair_diagonals(weight, real, rbo, rbi, shifts, masks))
    return sorted(ks)


def crossing_place(a: np.ndarray, b: np.ndarray, diagonals: list[int], period: int) -> np.ndarray:
    """The 2T-slot plaintexts [len(diagonals), 2T] of a conjugate-paired input: for diagonal d, A at
    position p and B at T + p where p + d < T; swapped where the read crosses into the other half.

    >>> crossing_place(np.array([[1, 1]]), np.array([[2, 2]]), [1], 2).tolist()     # T = 2, d = 1: p = 1 crosses
    [[1, 2, 2, 1]]
    """
    cross = np.arange(period)[None, :] + np.asarray(diagonals)[:, None] >= period
    return np.concatenate([np.where(cross, b, a), np.where(cross, a, b)], axis=1)


def ciphertext_diagonal_vectors(weight: np.ndarray, geometry: MatvecGeometry, bo: int, bi: int,
                                diagonals: list[int]) -> np.ndarray:
    """The plaintext vectors of ciphertext pair (bo, bi)'s diagonals: the real pair's T (R*T) slots, or
    with complex packing the 2T complex slots of A and B (module docstring)."""
    g = geometry
    if not g.complex_pack:
        return diagonal_vectors(weight, g, bo, bi, diagonals)
    real = real_view(g)
    d = {(ro, ri): diagonal_vectors(weight, real, rbo, rbi, diagonals) for ro, ri, rbo, rbi in real_pairs(g, bo, bi)}
    zero = np.zeros((len(diagonals), g.period))
    d00, d01, d10, d11 = (d.get(key, zero) for key in [(0, 0), (0, 1), (1, 0), (1, 1)])
    a = (d00 + d11 + 1j * (d10 - d01)) / 2
    b = (d00 - d11 + 1j * (d10 + d01)) / 2
    return crossing_place(a, b, diagonals, g.period)


def pair_vectors(vectors: list[np.ndarray]) -> list[np.ndarray]:
    """Real vectors two by two as real and imaginary parts (the last alone where odd).

    >>> [v.tolist() for v in pair_vectors([np.array([1.]), np.array([2.]), np.array([3.])])]
    [[(1+2j)], [(3+0j)]]
    """
    return [vectors[i] + (1j * vectors[i + 1] if i + 1 < len(vectors) else 0j) for i in range(0, len(vectors), 2)]


def split_vectors(vectors: list[np.ndarray], blocks: int) -> list[np.ndarray]:
    """The inverse of `pair_vectors`: `blocks` real vectors from their complex pairs.

    >>> [v.tolist() for v in split_vectors([np.array([1 + 2j]), np.array([3 + 0j])], 3)]
    [[1.0], [2.0], [3.0]]
    """
    out = [part for v in vectors for part in (np.real(v), np.imag(v))]
    return [np.array(v, dtype=np.float64) for v in out[:blocks]]
