"""Equilibrium volume and the equation of state of the elastic invariants (issue 19: K' = dK/dP).

Trees trained across materials learn how the moduli fall with volume *between* materials (d ln K / d ln V
about -1 to -2), not along one material's equation of state (-K', about -4): a hydrostatically compressed
crystal looked to them like a slightly different material, and K' came out at 1-2. This module separates
the two. A crystal's zero-pressure volume ``V0`` is predicted from features that do not change under a
uniform scaling of the crystal (composition, coordination, angles, length *ratios*; :data:`SCALE_DEPENDENT`
lists the descriptors that do change), so ``V0`` is the same for the crystal and for any compressed or
expanded copy of it. The elastic trees then read the crystal scaled to ``V0`` (:func:`scaled_to_volume`),
and the moduli are carried from ``V0`` to the actual volume by Murnaghan's equation of state,

    K(V) = K(V0) * (V0 / V) ** K'0,

whose pressure derivative at ``V0`` is exactly ``K'0`` (:attr:`EquilibriumVolume.pressure_derivative`).
The shear modulus takes the same factor (a stiffness tensor scaled as a whole: G'/G = K'/K, typical of
ionic and covalent solids within a factor of two).

For a relaxed crystal ``V`` equals the true ``V0`` and the factor only undoes the volume model's error (about
3 % in volume on validation); that costs some accuracy on relaxed crystals, reported in the model card.

The model is plain data stored in the checkpoint under ``"equilibrium_volume"``. NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES, kinked_columns
from gmt_ase.invariant.soft_trees import soft_predict

__all__ = [
    "ELASTIC_INVARIANTS",
    "FEATURE_NAMES",
    "FORMAT_VERSION",
    "SCALE_DEPENDENT",
    "EquilibriumVolume",
    "scale_free_features",
    "scaled_to_volume",
]

FORMAT_VERSION = 1
#: The invariants that follow the equation of state (read at ``V0``, carried to ``V``).
ELASTIC_INVARIANTS = ("k_vrh", "g_vrh")
#: Descriptors that change when the crystal is scaled uniformly (lengths, volumes, densities and what the
#: fixed neighbour cutoff counts); found numerically and guarded by a test.
SCALE_DEPENDENT = frozenset({
    "volume_per_atom",
    "log_volume_per_atom",
    "density",
    "valence_electron_density",
    "packing_fraction",
    "nn_distance_mean",
    "nn_distance_min",
    "nn_distance_max",
    "nn_over_covalent_mean",
    "nn_over_covalent_min",
    "neighbours_within_cutoff_mean",
    "first_shell_bonds_per_volume",
    "bond_length_over_covalent_mean",
    "bond_length_over_covalent_std",
    "neighbour_orientation_anisotropy",
    "neighbour_orientation_min_eigenvalue",
    "volume_over_elemental_volume",
    "neighbours_within_cutoff_per_volume",
})
#: The volume model's descriptor columns: scale-free, and without the kinked geometric minima, maxima and
#: spreads (:func:`~gmt_ase.invariant.descriptors.kinked_columns`): the moduli carry ``V0`` to the power K'0,
#: so a rattle must not move it (validation log V MAE 0.0358 without them, 0.0353 with them).
_SCALE_FREE_COLUMNS = np.array([
    i for i, (name, kinked) in enumerate(zip(DESCRIPTOR_NAMES, kinked_columns(DESCRIPTOR_NAMES), strict=True))
    if name not in SCALE_DEPENDENT and not kinked
])
_COLUMN = {name: i for i, name in enumerate(DESCRIPTOR_NAMES)}
#: Scale-free combinations of scale-dependent descriptors, the packing geometry without its size: the cube of
#: the mean first-shell bond over covalent radii per volume over elemental volume, and first-shell bonds per atom.
_RATIOS = ("bond_packing", "first_shell_bonds_per_atom")
#: Names of :func:`scale_free_features`' columns.
FEATURE_NAMES: tuple[str, ...] = (*(DESCRIPTOR_NAMES[i] for i in _SCALE_FREE_COLUMNS), *_RATIOS)
#: The target's descriptor: the volume per atom over the elements' own volumes, whose log the trees predict.
TARGET = "volume_over_elemental_volume"


def scale_free_features(all_descriptors: np.ndarray) -> np.ndarray:
    """(N, len(FEATURE_NAMES)) features of crystals that a uniform scaling leaves unchanged.

    Parameters
    ----------
    all_descriptors
        (N, len(DESCRIPTOR_NAMES)) every descriptor column
        (:meth:`gmt_ase.invariant.invariant_model.InvariantModel.all_descriptors`).
    """
    d = np.asarray(all_descriptors, dtype=np.float64)
    ratios = np.column_stack([  # bond-weighted means only: per-atom nearest distances move to first order in a rattle
        d[:, _COLUMN["bond_length_over_covalent_mean"]] ** 3 / d[:, _COLUMN["volume_over_elemental_volume"]],
        d[:, _COLUMN["first_shell_bonds_per_volume"]] * d[:, _COLUMN["volume_per_atom"]],
    ])
    return np.concatenate([d[:, _SCALE_FREE_COLUMNS], ratios], axis=1)


def scaled_to_volume(positions: np.ndarray, cell: np.ndarray, log_volume_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions and cell scaled uniformly by ``exp(log_volume_ratio / 3)`` (volume by ``exp(log_volume_ratio)``)."""
    factor = float(np.exp(log_volume_ratio / 3.0))
    return np.asarray(positions, dtype=np.float64) * factor, np.asarray(cell, dtype=np.float64) * factor


@dataclass(frozen=True)
class EquilibriumVolume:
    """Zero-pressure volume from scale-free features, and the Murnaghan factor of the moduli.

    Attributes
    ----------
    trees
        Predict ``log(V0 / V_elements)`` (:data:`TARGET`) from :func:`scale_free_features`.
    split_widths
        Half widths of the smooth splits (:func:`gmt_ase.invariant.soft_trees.soft_predict`), one per feature.
    pressure_derivative
        ``K'0`` of the equation of state ``K(V) = K(V0) (V0 / V) ** K'0``.
    feature_names
        The features the trees were trained on (must equal :data:`FEATURE_NAMES`).
    """

    trees: TreeEnsemble
    split_widths: np.ndarray
    pressure_derivative: float
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __post_init__(self) -> None:
        if tuple(self.feature_names) != FEATURE_NAMES:
            raise ValueError("equilibrium-volume model was trained on other features than this code computes")
        if self.trees.n_features != len(FEATURE_NAMES):
            raise ValueError(f"equilibrium-volume trees expect {self.trees.n_features} features, "
                             f"this code computes {len(FEATURE_NAMES)}")
        widths = np.asarray(self.split_widths, dtype=np.float64)
        if widths.shape != (len(FEATURE_NAMES),) or not np.all(widths > 0):
            raise ValueError(f"split_widths must be {len(FEATURE_NAMES)} positive numbers")
        if not 0.0 < self.pressure_derivative < 20.0:
            raise ValueError(f"pressure_derivative {self.pressure_derivative} is not a physical K'")

    @cached_property
    def _widths(self) -> np.ndarray:
        return np.asarray(self.split_widths, dtype=np.float64)

    def log_volume_ratio(self, all_descriptors: np.ndarray) -> np.ndarray:
        """(N,) ``log(V0 / V)`` of crystals: how far each must be scaled to reach its zero-pressure volume."""
        d = np.asarray(all_descriptors, dtype=np.float64)
        log_target = soft_predict(self.trees, scale_free_features(d), self._widths)
        return log_target - np.log(d[:, _COLUMN[TARGET]])

    def modulus_factor(self, log_volume_ratio: np.ndarray) -> np.ndarray:
        """Murnaghan factor ``(V0 / V) ** K'0`` that carries a modulus at ``V0`` to the volume ``V``."""
        return np.exp(self.pressure_derivative * np.asarray(log_volume_ratio, dtype=np.float64))

    def to_dict(self, binary: bool = False) -> dict[str, Any]:
        """Plain data (JSON-serialisable, or with ``binary`` the checkpoint's compact trees)."""
        return {
            "format_version": FORMAT_VERSION,
            "feature_names": list(self.feature_names),
            "pressure_derivative": float(self.pressure_derivative),
            "split_widths": np.asarray(self.split_widths, dtype=np.float64).tolist(),
            "trees": self.trees.to_dict(binary),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EquilibriumVolume:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"equilibrium-volume format {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        return cls(
            trees=TreeEnsemble.from_dict(data["trees"]),
            split_widths=np.asarray(data["split_widths"], dtype=np.float64),
            pressure_derivative=float(data["pressure_derivative"]),
            feature_names=tuple(data["feature_names"]),
        )
