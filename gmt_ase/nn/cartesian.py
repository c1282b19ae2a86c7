"""Float64 change of basis between e3nn irreps and the Cartesian target tensors, and Mandel maps.

e3nn's ``CartesianTensor`` builds its change of basis in float64 and then casts it to torch's default
dtype, which costs 1e-7 of equivariance in float64 runs. The bases here are assembled from
``o3.wigner_3j(..., dtype=float64)``; e3nn's l=1 basis is Cartesian (x, y, z), so the result is exact.

The irreps of each target are those of the registry (:data:`gmt_ase.core.tensors.TARGETS`); the Mandel weights
and Voigt pairs come from there too. Basis order (the order of the head's output irreps):

* rank 2, ``ij=ji``: ``0e, 2e``;
* rank 3, ``ijk=ikj``: ``1o (i x delta_jk), 1o, 2o, 3o`` (index i coupled to the 0e/2e part of jk);
* rank 4, ``ijkl=jikl=klij``: ``0e (0x0), 0e (2x2), 2e (0x2 + 2x0), 2e (2x2), 4e (2x2)``.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

from gmt_ase.core.tensors import MANDEL_WEIGHTS, TARGETS, VOIGT_PAIRS

__all__ = [
    "IRREPS",
    "cartesian_basis",
    "from_mandel",
    "mandel_basis",
    "to_mandel",
]

#: Output irreps of each target rank, from the registry (all rank-2 targets share ``ij=ji``).
IRREPS: dict[int, str] = {spec.rank: spec.irreps for spec in TARGETS.values()}


def _symmetric_basis() -> list[torch.Tensor]:
    """[l=0 block (1, 3, 3), l=2 block (5, 3, 3)], orthonormal symmetric matrices."""
    identity = torch.eye(3, dtype=torch.float64)[None] / math.sqrt(3.0)  # (1, 3, 3)
    w = o3.wigner_3j(1, 1, 2, dtype=torch.float64).permute(2, 0, 1)  # (5, 3, 3)
    return [identity, w / w.flatten(1).norm(dim=1)[:, None, None]]


def _normalise(block: torch.Tensor) -> torch.Tensor:
    return block / block.flatten(1).norm(dim=1).mean()


def cartesian_basis(rank: int) -> torch.Tensor:
    """Change of basis ``(dim_irreps, 3, ..., 3)`` in float64 for the target of the given rank.

    ``tensor = einsum("k,k...->...", irreps_features, basis)``.
    """
    sym = _symmetric_basis()
    if rank == 2:
        return torch.cat(sym)
    if rank == 3:
        blocks = []
        for big_l, l_out in ((0, 1), (2, 1), (2, 2), (2, 3)):
            w = o3.wigner_3j(1, big_l, l_out, dtype=torch.float64)  # (3, 2L+1, 2l+1)
            block = torch.einsum("ibm,bjk->mijk", w, sym[big_l // 2])  # (2l+1, 3, 3, 3)
            blocks.append(_normalise(block))
        return torch.cat(blocks)
    if rank == 4:
        blocks = []
        for l1, l2, l_out in ((0, 0, 0), (2, 2, 0), (0, 2, 2), (2, 2, 2), (2, 2, 4)):
            w = o3.wigner_3j(l1, l2, l_out, dtype=torch.float64)  # (2L1+1, 2L2+1, 2l+1)
            block = torch.einsum("abm,aij,bkl->mijkl", w, sym[l1 // 2], sym[l2 // 2])
            block = block + block.permute(0, 3, 4, 1, 2)  # major symmetry ij <-> kl
            blocks.append(_normalise(block))
        return torch.cat(blocks)
    raise ValueError(f"no Cartesian basis for rank {rank}")


def mandel_basis() -> torch.Tensor:
    """Orthonormal basis of symmetric 3x3 matrices in Mandel order xx yy zz yz xz xy, shape (6, 3, 3)."""
    basis = torch.zeros(6, 3, 3, dtype=torch.float64)
    for n, (i, j) in enumerate(VOIGT_PAIRS):
        # <B_n, T> = w_n T_ij for a symmetric T needs entries 1/w_n (twice, off the diagonal: 2/w_n = w_n).
        basis[n, i, j] = basis[n, j, i] = 1.0 / float(MANDEL_WEIGHTS[n])
    return basis


def to_mandel(tensor: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Batched torch (..., 3, 3, 3, 3) stiffness-like tensor -> (..., 6, 6) Mandel matrix.

    ``basis`` is :func:`mandel_basis` (kept by the caller in its dtype and device). The NumPy,
    single-tensor counterpart is :func:`gmt_ase.core.tensors.mandel_from_full`.
    """
    return torch.einsum("Iij,...ijkl,Jkl->...IJ", basis, tensor, basis)


def from_mandel(mandel: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Batched torch (..., 6, 6) Mandel matrix -> (..., 3, 3, 3, 3) tensor (inverse of :func:`to_mandel`)."""
    return torch.einsum("...IJ,Iij,Jkl->...ijkl", mandel, basis, basis)
