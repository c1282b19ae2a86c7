"""Building blocks of the GMTNet-style network: radial basis, invariant and equivariant layers, heads.

Every layer takes and returns plain tensors; none knows about ASE or pymatgen.
"""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

__all__ = [
    "BesselBasis",
    "EquivariantDensity",
    "GatedBlock",
    "InvariantConv",
    "polynomial_envelope",
    "scatter_sum",
    "scatter_mean",
]


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Sum rows of ``values`` (M, ...) into ``size`` bins given by ``index`` (M,)."""
    out = values.new_zeros((size, *values.shape[1:]))
    return out.index_add_(0, index, values)


def scatter_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of rows of ``values`` per bin; empty bins give zero."""
    total = scatter_sum(values, index, size)
    count = torch.bincount(index, minlength=size).clamp(min=1).to(values.dtype)
    return total / count.view(-1, *([1] * (values.dim() - 1)))


def polynomial_envelope(r: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """Smooth cutoff (DimeNet polynomial): 1 at r=0, zero value and derivatives at r=cutoff."""
    x = (r / cutoff).clamp(max=1.0)
    env = (
        1.0
        - (p + 1) * (p + 2) / 2 * x**p
        + p * (p + 2) * x ** (p + 1)
        - p * (p + 1) / 2 * x ** (p + 2)
    )
    return env * (r < cutoff)


class BesselBasis(nn.Module):
    """Radial Bessel functions ``sqrt(2/c) sin(n pi r / c) / r``, n = 1..num_basis."""

    def __init__(self, cutoff: float, num_basis: int = 8) -> None:
        super().__init__()
        self.cutoff = cutoff
        self.register_buffer("frequencies", math.pi * torch.arange(1, num_basis + 1) / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:  # (E,) -> (E, num_basis)
        """Evaluate the basis on distances ``r``."""
        r = r.unsqueeze(-1)
        return math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies * r) / r


class _PairLinear(nn.Module):
    """``Linear(concat(h_i, h_j, rbf_ij))`` computed as ``A h_i + B h_j + C rbf_ij``.

    Mathematically the same as a linear layer on the concatenated edge features, but the node terms
    are computed once per atom instead of once per edge (E is ~40 N), which makes it several times faster.
    """

    def __init__(self, dim: int, num_radial: int, out_dim: int) -> None:
        super().__init__()
        self.centre = nn.Linear(dim, out_dim)
        self.neighbour = nn.Linear(dim, out_dim, bias=False)
        self.radial = nn.Linear(num_radial, out_dim, bias=False)

    def forward(self, h: torch.Tensor, rbf: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        centre, neighbour = edge_index
        # index_select and in-place sums: the same additions in the same order as
        # ``centre(h)[centre] + neighbour(h)[neighbour] + radial(rbf)``, about twice as fast on the CPU
        out = self.centre(h).index_select(0, centre)  # (E, out)
        out += self.neighbour(h).index_select(0, neighbour)
        out += self.radial(rbf)
        return out


class InvariantConv(nn.Module):
    """Gated invariant message passing (CGCNN-style) with a residual update."""

    def __init__(self, dim: int, num_radial: int, avg_num_neighbors: float) -> None:
        super().__init__()
        self.message = _PairLinear(dim, num_radial, 2 * dim)
        self.update = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.norm = avg_num_neighbors

    def forward(
        self, h: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor, edge_index: torch.Tensor
    ) -> torch.Tensor:
        """Update node scalars ``h`` (N, F) from neighbours."""
        centre, neighbour = edge_index
        z = self.message(h, rbf, edge_index)  # (E, 2F)
        gate, core = z.chunk(2, dim=-1)
        msg = torch.sigmoid(gate) * nn.functional.silu(core) * envelope.unsqueeze(-1)  # (E, F)
        agg = scatter_sum(msg, centre, h.shape[0]) / self.norm  # (N, F)
        return h + self.update(agg)


class EquivariantDensity(nn.Module):
    """Atomic density expansion ``A_i = sum_j R_c(h_i, h_j, r_ij) Y_l(r_ij_hat)`` (ACE-like A basis).

    The channel count per degree l is ``channels[l]``; degree l carries parity (-1)^l.
    """

    def __init__(self, dim: int, num_radial: int, channels: list[int], avg_num_neighbors: float) -> None:
        super().__init__()
        self.lmax = len(channels) - 1
        self.channels = list(channels)
        self.irreps_out = o3.Irreps([(c, (l, (-1) ** l)) for l, c in enumerate(channels)])
        self.irreps_sh = o3.Irreps.spherical_harmonics(self.lmax)
        self.radial_in = _PairLinear(dim, num_radial, dim)
        self.radial_out = nn.Sequential(nn.SiLU(), nn.Linear(dim, sum(channels)))
        self.norm = avg_num_neighbors

    def harmonics(self, edge_vec: torch.Tensor) -> torch.Tensor:
        """Spherical harmonics (E, (lmax+1)^2) of the edge directions, component-normalised."""
        return o3.spherical_harmonics(self.irreps_sh, edge_vec, normalize=True, normalization="component")

    def forward(
        self,
        h: torch.Tensor,
        rbf: torch.Tensor,
        envelope: torch.Tensor,
        sh: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """Return node features (N, irreps_out.dim) given the edges' :meth:`harmonics` ``sh``."""
        centre, neighbour = edge_index
        weights = self.radial_out(self.radial_in(h, rbf, edge_index))  # (E, sum c)
        weights = weights * envelope.unsqueeze(-1)
        parts, w_start = [], 0
        for l, c in enumerate(self.channels):
            y = sh[:, l * l : (l + 1) * (l + 1)]  # (E, 2l+1)
            w = weights[:, w_start : w_start + c]  # (E, c)
            parts.append((w.unsqueeze(-1) * y.unsqueeze(1)).flatten(1))  # (E, c*(2l+1))
            w_start += c
        return scatter_sum(torch.cat(parts, dim=-1), centre, h.shape[0]) / self.norm


class GatedBlock(nn.Module):
    """Equivariant linear map (optionally plus a self tensor product) followed by a gate nonlinearity."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, self_product: o3.Irreps | None) -> None:
        super().__init__()
        irreps_out = o3.Irreps(irreps_out).simplify()
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_out if ir.l > 0])
        gates = o3.Irreps([(gated.num_irreps, (0, 1))]) if gated.num_irreps else o3.Irreps("")
        self.gate = Gate(scalars, [nn.functional.silu], gates, [torch.sigmoid], gated)
        self.linear = o3.Linear(irreps_in, self.gate.irreps_in)
        self.product = None
        if self_product is not None:
            self.reduce = o3.Linear(irreps_in, self_product)
            self.product = o3.FullyConnectedTensorProduct(self_product, self_product, self.gate.irreps_in)
        self.irreps_out = self.gate.irreps_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to features ``x`` (..., irreps_in.dim)."""
        y = self.linear(x)
        if self.product is not None:
            a = self.reduce(x)
            y = y + self.product(a, a)
        return self.gate(y)
