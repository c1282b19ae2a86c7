"""GMTNet-style O(3)-equivariant network: crystal graph in, symmetric Cartesian tensors out.

Pipeline (each step is exactly O(3)-equivariant):

1. species embedding and invariant gated message passing give node scalars ``h`` (N, F);
2. an equivariant density ``A_i = sum_j R(h_i, h_j, r) Y_l(r_hat)`` (l <= 4) carries geometry;
3. a gated block with a self tensor product ``A x A`` builds many-body features of all parities;
4. features are averaged per crystal (so supercells give the same answer) and fed to one head per target
   whose output irreps are turned into Cartesian tensors with float64 bases (:mod:`gmt_ase.nn.cartesian`);
5. every output is projected onto the crystal's point group with the shared Reynolds operator
   (:func:`gmt_ase.core.symmetry.reynolds_projection`).

Positive-definite targets are predicted through a matrix exponential of a symmetric "log" tensor:
``eps_inf = 1 + exp(L_e)``, ``eps_ion = exp(L_i)`` and ``C_Mandel = c0 exp(M)``. The exponential commutes
with rotations, so equivariance and the symmetry projection are kept (the exponential of a projected log
tensor is itself invariant under the point group and needs no second projection; callers re-project the
float32 outputs in float64), while positivity (and Born stability of C) holds by construction and the
loss can be taken on a relative (log) scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from e3nn import o3
from torch import nn

from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.core.tensors import MODEL_TARGETS, TARGETS
from gmt_ase.nn._clone import clone_module
from gmt_ase.nn.cartesian import cartesian_basis, from_mandel, mandel_basis, to_mandel
from gmt_ase.nn.layers import (
    BesselBasis,
    EquivariantDensity,
    GatedBlock,
    InvariantConv,
    polynomial_envelope,
    scatter_mean,
)

__all__ = ["ModelConfig", "GMTEnsemble", "GMTNet", "OUTPUT_KEYS"]

#: The symmetrised Cartesian tensors of every forward pass (the registry's predicted targets).
OUTPUT_KEYS = MODEL_TARGETS
_DIRECTION_EPS = 1e-3  # below this norm the piezo direction (and so the tensor) fades smoothly to zero


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`GMTNet` (plain data: stored in every checkpoint).

    Attributes
    ----------
    cutoff
        Neighbour cutoff radius, Angstrom.
    num_species
        Size of the species embedding (atomic numbers 0 .. num_species-1).
    scalar_dim
        Width of the invariant node features.
    num_radial
        Number of Bessel radial functions.
    invariant_layers
        Number of invariant message-passing layers.
    density_channels
        Channels per spherical-harmonic degree l = 0..lmax of the equivariant density.
    hidden_irreps
        Node features after the gated many-body block.
    product_irreps
        Reduced features entering the self tensor product.
    head_irreps
        Hidden irreps of each output head.
    avg_num_neighbors
        Normalisation of neighbour sums.
    log_offsets
        Isotropic offsets added to the log-space outputs (from the training data), keys
        ``dielectric_electronic``, ``dielectric_ionic``, ``elastic`` and ``piezoelectric`` (log of the
        Frobenius norm in units of ``piezo_scale``).
    elastic_scale
        Stiffness unit c0 of ``C_Mandel = c0 exp(M)``, GPa.
    piezo_scale
        Scale of the piezoelectric head, C/m^2.
    element_features
        Number of element descriptor columns added to the species embedding through a linear map (0: a
        learned embedding only). The descriptor table is a buffer stored in the checkpoint and filled at
        training time from :func:`gmt_ase.training.element_features.element_feature_table`.
    """

    cutoff: float = 5.0
    num_species: int = 95
    scalar_dim: int = 64
    num_radial: int = 8
    invariant_layers: int = 3
    density_channels: tuple[int, ...] = (32, 16, 16, 8, 8)
    hidden_irreps: str = "32x0e+16x1o+16x2e+8x2o+8x3o+8x4e"
    product_irreps: str = "8x0e+8x1o+8x2e+4x3o+4x4e"
    head_irreps: str = "16x0e+8x1o+8x2e+8x2o+8x3o+8x4e"
    avg_num_neighbors: float = 40.0
    log_offsets: dict[str, float] = field(
        default_factory=lambda: {
            "dielectric_electronic": 1.0, "dielectric_ionic": 0.0, "elastic": 0.0, "piezoelectric": -1.0
        }
    )
    elastic_scale: float = 100.0
    piezo_scale: float = 1.0
    element_features: int = 0

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        data = asdict(self)
        data["density_channels"] = list(self.density_channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        data = dict(data)
        data["density_channels"] = tuple(data.get("density_channels", cls.density_channels))
        return cls(**data)


class _Head(nn.Module):
    """Pooled crystal features -> one gated block -> target irreps."""

    def __init__(self, irreps_in: o3.Irreps, irreps_hidden: str, irreps_out: str) -> None:
        super().__init__()
        self.block = GatedBlock(irreps_in, o3.Irreps(irreps_hidden), self_product=None)
        self.out = o3.Linear(self.block.irreps_out, o3.Irreps(irreps_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(x))


class GMTNet(nn.Module):
    """Equivariant multi-task network for dielectric, piezoelectric and elastic tensors.

    ``forward(batch)`` takes the dictionary made by :func:`gmt_ase.graph.crystal_graph.collate` and returns the
    symmetrised Cartesian tensors (keys :data:`OUTPUT_KEYS`) plus what the training loss compares:
    ``log_dielectric_electronic`` and ``log_dielectric_ionic`` (B, 3, 3), ``log_elastic`` (B, 6, 6)
    Mandel, ``log_piezoelectric_magnitude`` (B,) and ``piezoelectric_direction`` (B, 3, 3, 3).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.scalar_dim
        self.embedding = nn.Embedding(config.num_species, dim)
        if config.element_features:
            self.register_buffer("element_table", torch.zeros(config.num_species, config.element_features))
            self.element_projection = nn.Linear(config.element_features, dim, bias=False)
        self.radial = BesselBasis(config.cutoff, config.num_radial)
        self.invariant = nn.ModuleList(
            InvariantConv(dim, config.num_radial, config.avg_num_neighbors)
            for _ in range(config.invariant_layers)
        )
        self.density = EquivariantDensity(
            dim, config.num_radial, list(config.density_channels), config.avg_num_neighbors
        )
        irreps_node_in = o3.Irreps(f"{dim}x0e") + self.density.irreps_out
        self.many_body = GatedBlock(irreps_node_in, o3.Irreps(config.hidden_irreps), o3.Irreps(config.product_irreps))
        irreps_pooled = self.many_body.irreps_out + o3.Irreps(f"{dim}x0e")
        self.heads = nn.ModuleDict()
        for name in OUTPUT_KEYS:  # creation order fixes the seeded initialisation: keep it
            self.heads[name] = _Head(irreps_pooled, config.head_irreps, TARGETS[name].irreps)
            if name == "piezoelectric":  # the invariant log-magnitude of the piezo tensor
                self.heads["piezoelectric_magnitude"] = _Head(irreps_pooled, config.head_irreps, "1x0e")
        for rank in sorted({TARGETS[name].rank for name in OUTPUT_KEYS}):
            self.register_buffer(f"basis_rank{rank}", cartesian_basis(rank), persistent=False)
        self.register_buffer("mandel", mandel_basis(), persistent=False)

    def edge_features(self, edge_vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Radial basis (E, R), envelope (E,) and spherical harmonics (E, (lmax+1)^2) of the edge vectors.

        They depend on the configuration only (no trained weights), so models of one configuration share them.
        """
        r = edge_vec.norm(dim=-1)  # (E,)
        return self.radial(r), polynomial_envelope(r, self.config.cutoff), self.density.harmonics(edge_vec)

    def forward(
        self,
        batch: dict[str, torch.Tensor],
        edges: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Predict all targets for a collated batch (``edges``: its :meth:`edge_features`, if known)."""
        edge_index = batch["edge_index"]  # (2, E)
        num_crystals = batch["num_atoms"].shape[0]
        rbf, env, sh = edges if edges is not None else self.edge_features(batch["edge_vec"])

        h = self.embedding(batch["numbers"])  # (N, F)
        if self.config.element_features:
            h = h + self.element_projection(self.element_table[batch["numbers"]].to(h.dtype))
        for layer in self.invariant:
            h = layer(h, rbf, env, edge_index)
        a = self.density(h, rbf, env, sh, edge_index)  # (N, dim A)
        x = self.many_body(torch.cat([h, a], dim=-1))  # (N, dim hidden)

        pooled = scatter_mean(torch.cat([x, h], dim=-1), batch["atom_crystal"], num_crystals)  # (B, D)
        ops, weights = batch["operations"], batch["operation_weights"]  # (B, G, 3, 3), (B, G)
        raw = {name: head(pooled) for name, head in self.heads.items()}
        return self._tensors(raw, ops, weights)

    def _cartesian(self, features: torch.Tensor, rank: int) -> torch.Tensor:
        basis = getattr(self, f"basis_rank{rank}").to(features.dtype)
        return torch.einsum("bk,k...->b...", features, basis)

    def _tensors(
        self, raw: dict[str, torch.Tensor], ops: torch.Tensor, weights: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        cfg = self.config
        eye3 = torch.eye(3, dtype=ops.dtype, device=ops.device)
        eye6 = torch.eye(6, dtype=ops.dtype, device=ops.device)
        mandel = self.mandel.to(ops.dtype)

        def project(t: torch.Tensor) -> torch.Tensor:  # (B, 3, ..., 3): one tensor per crystal
            return reynolds_projection(t, ops, weights, rank=t.dim() - 1)

        out: dict[str, torch.Tensor] = {}
        for name in ("dielectric_electronic", "dielectric_ionic"):
            log_eps = project(self._cartesian(raw[name], 2)) + cfg.log_offsets[name] * eye3  # (B, 3, 3)
            out[f"log_{name}"] = log_eps
            eps = torch.linalg.matrix_exp(log_eps)  # invariant, like log_eps: exp commutes with rotations
            out[name] = eps + eye3 if name == "dielectric_electronic" else eps
        log_c = to_mandel(project(self._cartesian(raw["elastic"], 4)), mandel)  # (B, 6, 6)
        log_c = log_c + cfg.log_offsets["elastic"] * eye6
        out["log_elastic"] = log_c
        stiffness = cfg.elastic_scale * torch.linalg.matrix_exp(log_c)  # (B, 6, 6) GPa, Mandel
        out["elastic"] = from_mandel(stiffness, mandel)  # (B, 3, 3, 3, 3), invariant like log_c
        # Piezo = magnitude (invariant head, log scale) x direction (equivariant head, normalised after the
        # projection). A sign that is hard to tell from the structure then costs the direction loss only,
        # instead of shrinking the whole tensor towards zero; centrosymmetric crystals project to v = 0
        # and so stay exactly zero.
        v = project(self._cartesian(raw["piezoelectric"], 3))  # (B, 3, 3, 3)
        v_norm = v.flatten(1).norm(dim=-1)  # (B,)
        direction = v / torch.sqrt(v_norm.square() + _DIRECTION_EPS**2)[:, None, None, None]
        log_magnitude = raw["piezoelectric_magnitude"][:, 0] + cfg.log_offsets.get("piezoelectric", 0.0)  # (B,)
        out["log_piezoelectric_magnitude"] = log_magnitude
        out["piezoelectric_direction"] = direction
        magnitude = cfg.piezo_scale * torch.exp(log_magnitude)  # (B,) C/m^2, the norm of a non-zero tensor
        out["piezoelectric_magnitude"] = magnitude
        out["piezoelectric"] = magnitude[:, None, None, None] * direction
        return out


class GMTEnsemble(nn.Module):
    """The mean of several :class:`GMTNet` members sharing one configuration.

    Members trained with different seeds, schedules or stopping epochs overfit differently; averaging
    their outputs reduces that variance. The mean of symmetric (projected) tensors is symmetric and the
    mean of positive-definite ones is positive definite, so every guarantee of a single member holds.
    """

    def __init__(self, config: ModelConfig, size: int) -> None:
        super().__init__()
        if size < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {size}")
        self.config = config
        first = GMTNet(config)  # building e3nn's generated code is most of the cost: do it once
        self.members = nn.ModuleList([first, *(clone_module(first) for _ in range(size - 1))])

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Average every output of the members; piezo tensors are combined without shrinking them.

        The members share one configuration, so the edge features are computed once for all of them.
        """
        edges = self.members[0].edge_features(batch["edge_vec"])
        outputs = [member(batch, edges) for member in self.members]
        combined = {key: torch.stack([out[key] for out in outputs]).mean(0) for key in outputs[0]}
        combined["piezoelectric"] = combine_odd_tensors(torch.stack([out["piezoelectric"] for out in outputs]))
        return combined


def combine_odd_tensors(members: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Combine (M, B, 3, 3, 3) member predictions of an odd-rank tensor by direction and magnitude.

    A plain mean of members that disagree on the sign (or direction) of a polar tensor shrinks it
    towards zero. Here each member's sign is aligned with the first member's, the aligned mean gives the
    direction, its overall sign follows the plain mean (the majority), and its norm is the members' mean
    norm. Every step uses inner products and norms only, so the result is as equivariant and as
    symmetric as the members are.
    """
    flat = members.flatten(start_dim=2)  # (M, B, 27)
    signs = torch.where((flat * flat[:1]).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(flat.dtype)
    direction = (signs * flat).mean(0)  # (B, 27)
    majority = torch.where((direction * flat.mean(0)).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(flat.dtype)
    norm = direction.norm(dim=-1, keepdim=True)
    scale = flat.norm(dim=-1).mean(0).unsqueeze(-1) / norm.clamp_min(eps)
    combined = torch.where(norm > eps, majority * direction * scale, torch.zeros_like(direction))
    return combined.reshape(members.shape[1:])

