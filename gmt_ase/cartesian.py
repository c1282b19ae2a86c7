"""Float64 change of basis between e3nn irreps and the Cartesian target tensors, and Mandel maps.

e3nn's ``CartesianTensor`` builds its change of basis in float64 and then casts it to torch's default
dtype, which costs 1e-7 of equivariance in float64 runs. The bases here are assembled from
``o3.wigner_3j(..., dtype=float64)``; e3nn's l=1 basis is Cartesian (x, y, z), so the result is exact.

Basis order (the order of the head's output irreps):

* rank 2, ``ij=ji``: ``0e, 2e``;
* rank 3, ``ijk=ikj``: ``1o (i x delta_jk), 1o, 2o, 3o`` (index i coupled to the 0e/2e part of jk);
* rank 4, ``ijkl=jikl=klij``: ``0e (0x0), 0e (2x2), 2e (0x2 + 2x0), 2e (2x2), 4e (2x2)``.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3

__all__ = [
    "IRREPS",
    "cartesian_basis",
    "mandel_basis",
    "full_from_mandel",
    "mandel_from_full",
]

IRREPS: dict[int, str] = {2: "1x0e+1x2e", 3: "2x1o+1x2o+1x3o", 4: "2x0e+2x2e+1x4e"}


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
    for n, (i, j) in enumerate(((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))):
        value = 1.0 if i == j else 1.0 / math.sqrt(2.0)
        basis[n, i, j] = basis[n, j, i] = value
    return basis


def mandel_from_full(tensor: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3, 3, 3) stiffness-like tensor -> (..., 6, 6) Mandel matrix."""
    return torch.einsum("Iij,...ijkl,Jkl->...IJ", basis, tensor, basis)


def full_from_mandel(mandel: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """(..., 6, 6) Mandel matrix -> (..., 3, 3, 3, 3) tensor."""
    return torch.einsum("...IJ,Iij,Jkl->...ijkl", mandel, basis, basis)
