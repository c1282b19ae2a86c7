"""The invariant learner: boosted trees on crystal descriptors that set the scale of each predicted tensor.

On a few thousand crystals a descriptor model predicts the isotropic moduli and the dielectric means
better than the equivariant network does, while only the network knows a tensor's anisotropic shape
(DESIGN.md section 7). The shipped model therefore predicts, per crystal, five invariants with
:class:`~gmt_ase.invariant.boosted_trees.TreeEnsemble` models on
:func:`~gmt_ase.invariant.descriptors.crystal_descriptors`, blends each with the network's own value
(weights chosen on the validation split) and rescales the network's tensors to them with the isotropic
maps of :mod:`gmt_ase.core.invariants`, which keep the point-group symmetry exact.

The trees are evaluated with smooth splits (:mod:`gmt_ase.invariant.soft_trees`, half widths
:attr:`InvariantModel.split_widths`) on descriptors that are continuous in the positions and the cell, so
each invariant is a continuous, piecewise-smooth function of the crystal: the same for every way of writing
it (no branch flips on 1e-16 rounding), and without steps under strain or rattles.

The model is plain data (numbers, lists and compressed arrays) stored in the checkpoint under
``"invariant_model"``. NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gmt_ase.core.invariants import (
    INVARIANTS,
    dielectric_mean,
    piezo_norm,
    rescale_dielectric,
    rescale_elastic,
    vrh_moduli,
)
from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import (
    DESCRIPTOR_NAMES,
    ElementTable,
    crystal_descriptors,
    descriptor_columns,
)
from gmt_ase.invariant.soft_trees import soft_predict

__all__ = [
    "INVARIANTS",
    "FORMAT_VERSION",
    "PIEZO_MAGNITUDE",
    "InvariantModel",
    "InvariantTarget",
    "blend_invariants",
    "network_invariants",
]

#: 2: smooth descriptors and per-descriptor split widths (smooth trees); 1 (hard trees) is no longer computed.
FORMAT_VERSION = 2
#: Key of the network's piezo magnitude in its outputs: the norm of its piezo tensor where the direction is
#: fully grown (:class:`gmt_ase.nn.model.GMTNet`).
PIEZO_MAGNITUDE = "piezoelectric_magnitude"
#: A network piezo tensor below this norm (C/m^2) is zero by symmetry and is not rescaled.
PIEZO_ZERO = 1e-8


@dataclass(frozen=True)
class InvariantTarget:
    """One invariant: trees, blend weight and the validation spread of the blended log value.

    Attributes
    ----------
    trees
        Predict ``log(value - offset)`` from the descriptor vector.
    network_weight
        Weight of the network's own ``log(value - offset)`` in the blend (0: trees only).
    log_std
        Standard deviation of the blended log error on the validation split.
    """

    trees: TreeEnsemble
    network_weight: float
    log_std: float

    def to_dict(self, binary: bool = False) -> dict[str, Any]:
        """Plain-data form (trees as lists, or as bytes with ``binary``: see :meth:`TreeEnsemble.to_dict`)."""
        return {"trees": self.trees.to_dict(binary), "network_weight": self.network_weight, "log_std": self.log_std}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvariantTarget:
        """Inverse of :meth:`to_dict`."""
        weight = float(data["network_weight"])
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"network_weight must be in [0, 1], got {weight}")
        return cls(TreeEnsemble.from_dict(data["trees"]), weight, float(data["log_std"]))


def network_invariants(tensors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Compute the invariants of one crystal's Cartesian tensors (keys of :data:`INVARIANTS`)."""
    k_vrh, g_vrh = vrh_moduli(tensors["elastic"])
    electronic = dielectric_mean(tensors["dielectric_electronic"])
    return {
        "k_vrh": k_vrh,
        "g_vrh": g_vrh,
        "eps_electronic_mean": electronic,
        "eps_total_mean": electronic + dielectric_mean(tensors["dielectric_ionic"]),
        "piezo_norm": piezo_norm(tensors["piezoelectric"]),
    }


def blend_invariants(tensors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Return the network's invariants as the blend sees them: its piezo *magnitude* where not zero by symmetry.

    ``tensors`` holds the network's Cartesian tensors and its :data:`PIEZO_MAGNITUDE`. The magnitude, not the
    norm, is what the network was trained to give, and the piezo tensor is rescaled by ``invariant / magnitude``.
    """
    own = network_invariants(tensors)
    if own["piezo_norm"] > PIEZO_ZERO:
        own["piezo_norm"] = float(tensors[PIEZO_MAGNITUDE])
    return own


def _log_transform(values: np.ndarray, offset: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.clip(np.asarray(values, dtype=np.float64) - offset, 1e-12, None))


@dataclass(frozen=True)
class InvariantModel:
    """Descriptor trees for the invariants of :data:`INVARIANTS`, and the rescaling of network tensors.

    Attributes
    ----------
    table
        Element properties for the descriptors.
    cutoff
        Neighbour cutoff of the bond statistics, Angstrom (the network's).
    targets
        One :class:`InvariantTarget` per invariant name.
    descriptor_names
        The descriptors the trees read, in their column order (a subset of :data:`DESCRIPTOR_NAMES`).
    split_widths
        Half width of the smooth splits on each descriptor (:func:`gmt_ase.invariant.soft_trees.soft_predict`),
        in the descriptor's units; ``None``: hard splits (a piecewise-constant model, for tests only).
    """

    table: ElementTable
    cutoff: float
    targets: Mapping[str, InvariantTarget]
    descriptor_names: tuple[str, ...] = DESCRIPTOR_NAMES
    split_widths: np.ndarray | None = None

    def __post_init__(self) -> None:
        unknown = set(self.targets) - set(INVARIANTS)
        if unknown:
            raise ValueError(f"unknown invariants {sorted(unknown)}; known: {list(INVARIANTS)}")
        _ = self._columns  # resolving the columns refuses descriptors this code does not compute
        if self.split_widths is not None:
            widths = np.asarray(self.split_widths, dtype=np.float64)
            if widths.shape != (len(self.descriptor_names),) or not np.all(widths > 0):
                raise ValueError(f"split_widths must be {len(self.descriptor_names)} positive numbers")
        for name, target in self.targets.items():
            if target.trees.n_features != len(self.descriptor_names):
                raise ValueError(
                    f"invariant {name!r} expects {target.trees.n_features} descriptors, "
                    f"the model names {len(self.descriptor_names)}"
                )

    @cached_property
    def _columns(self) -> np.ndarray:
        """Positions of the model's descriptors in :data:`DESCRIPTOR_NAMES` (found once per model)."""
        return descriptor_columns(self.descriptor_names, "invariant model uses")

    def to_dict(self, binary: bool = False) -> dict[str, Any]:
        """Plain data: JSON-serialisable, or with ``binary`` the compact form the checkpoint stores."""
        return {
            "format_version": FORMAT_VERSION,
            "descriptor_names": list(self.descriptor_names),
            "cutoff": self.cutoff,
            "element_table": self.table.to_dict(),
            "targets": {name: target.to_dict(binary) for name, target in self.targets.items()},
            "split_widths": None if self.split_widths is None else np.asarray(self.split_widths).tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvariantModel:
        """Inverse of :meth:`to_dict`; refuses data that names descriptors this code does not compute.

        Models name the descriptors they were trained on, so a model trained before descriptors were added
        keeps working (it uses the subset it knows).
        """
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"invariant model format {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        return cls(
            table=ElementTable.from_dict(data["element_table"]),
            cutoff=float(data["cutoff"]),
            targets={name: InvariantTarget.from_dict(t) for name, t in data["targets"].items()},
            descriptor_names=tuple(data["descriptor_names"]),
            split_widths=None if data.get("split_widths") is None else np.asarray(data["split_widths"], dtype=float),
        )

    def all_descriptors(self, graphs: Sequence[Any], cells: Sequence[np.ndarray]) -> np.ndarray:
        """(N, len(DESCRIPTOR_NAMES)) descriptors of crystals given their graphs and cells, every column.

        The graphs are :class:`gmt_ase.graph.crystal_graph.CrystalGraph`.
        """
        rows = [
            crystal_descriptors(g.numbers, cell, g.edge_index, g.edge_vec, self.table, self.cutoff)
            for g, cell in zip(graphs, cells, strict=True)
        ]
        return np.stack(rows).reshape(len(rows), len(DESCRIPTOR_NAMES))

    def descriptors(self, graphs: Sequence[Any], cells: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) descriptors of crystals given their graphs and cells, the model's columns.

        See :meth:`all_descriptors`; the columns are the model's :attr:`descriptor_names`.
        """
        return self.columns(self.all_descriptors(graphs, cells))

    def columns(self, all_descriptors: np.ndarray) -> np.ndarray:
        """Select the model's columns of an :meth:`all_descriptors` array."""
        return np.asarray(all_descriptors)[:, self._columns]

    def predict(
        self,
        descriptors: np.ndarray,
        network: Sequence[Mapping[str, float]],
        names: Sequence[str] | None = None,
    ) -> list[dict[str, float]]:
        """Blended invariants per crystal from descriptors and the network's own invariants.

        ``names`` limits the prediction to these invariants (default: every target of the model).
        """
        blended: dict[str, np.ndarray] = {}
        for name, target in self.targets.items():
            if names is not None and name not in names:
                continue
            offset = INVARIANTS[name]
            trees = self.tree_values(target, descriptors)
            own = _log_transform([inv[name] for inv in network], offset)
            weight = np.where(np.isfinite(own), target.network_weight, 0.0)
            log_value = (1.0 - weight) * trees + weight * np.where(np.isfinite(own), own, 0.0)
            blended[name] = offset + np.exp(log_value)
        return [{name: float(values[i]) for name, values in blended.items()} for i in range(len(network))]

    def tree_values(self, target: InvariantTarget, descriptors: np.ndarray) -> np.ndarray:
        """One target's tree output per row: smooth splits with :attr:`split_widths`, else hard ones."""
        if self.split_widths is None:
            return target.trees.predict(descriptors)
        return soft_predict(target.trees, descriptors, self.split_widths)

    def apply(
        self,
        tensors: Mapping[str, np.ndarray],
        invariants: Mapping[str, float],
        own: Mapping[str, float] | None = None,
    ) -> dict[str, np.ndarray]:
        """Rescale one crystal's network tensors to the given invariants (symmetry kept exactly).

        ``own`` are the tensors' own invariants when the caller has them already.
        """
        own = network_invariants(tensors) if own is None else own
        out = {name: np.asarray(value, dtype=np.float64) for name, value in tensors.items()}
        if "k_vrh" in invariants and "g_vrh" in invariants and own["k_vrh"] > 0 and own["g_vrh"] > 0:
            out["elastic"] = rescale_elastic(
                out["elastic"], invariants["k_vrh"] / own["k_vrh"], invariants["g_vrh"] / own["g_vrh"]
            )
        electronic = own["eps_electronic_mean"]
        if "eps_electronic_mean" in invariants and electronic > 1.0:
            factor = (invariants["eps_electronic_mean"] - 1.0) / (electronic - 1.0)
            out["dielectric_electronic"] = rescale_dielectric(out["dielectric_electronic"], factor, vacuum=1.0)
            electronic = invariants["eps_electronic_mean"]
        ionic = own["eps_total_mean"] - own["eps_electronic_mean"]
        if "eps_total_mean" in invariants and ionic > 0.0:
            factor = max(invariants["eps_total_mean"] - electronic, 0.0) / ionic
            out["dielectric_ionic"] = rescale_dielectric(out["dielectric_ionic"], factor, vacuum=0.0)
        if "piezo_norm" in invariants and own["piezo_norm"] > PIEZO_ZERO:
            out["piezoelectric"] = out["piezoelectric"] * (invariants["piezo_norm"] / own["piezo_norm"])
        return out
