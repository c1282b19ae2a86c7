"""Rotation-invariant crystal descriptors for the invariant learner: composition and bond statistics.

A crystal's isotropic moduli and dielectric means are scalars, and for scalars a fixed-length descriptor
fed to gradient-boosted trees is a strong learner on a few thousand crystals (DESIGN.md section 7). The
descriptor is a pure NumPy function of the crystal's arrays, its neighbour edges (the same edges the
network uses, so no second neighbour list) and an :class:`ElementTable` of raw element properties. It is
invariant to rotation, reflection, translation, atom order and supercells by construction: it only uses
site-averaged statistics, distances and the volume per atom.

The element table is built once from pymatgen at training time (:func:`element_table_from_pymatgen`) and
stored in the invariant model's JSON file, so prediction never imports pymatgen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DESCRIPTOR_NAMES",
    "ELEMENT_PROPERTIES",
    "ElementTable",
    "crystal_descriptors",
    "element_table_from_pymatgen",
]

#: Raw element properties (pymatgen ``Element`` attribute names, ``covalent_radius`` from ASE).
ELEMENT_PROPERTIES: tuple[str, ...] = (
    "Z",
    "row",
    "group",
    "X",
    "atomic_radius",
    "atomic_mass",
    "mendeleev_no",
    "molar_volume",
    "melting_point",
    "ionization_energy",
    "electron_affinity",
    "covalent_radius",
    "bulk_modulus",
    "rigidity_modulus",
    "n_valence",
    "block_p",
    "block_d",
    "block_f",
)
_STATISTICS = ("mean", "std", "min", "max")
_STRUCTURE_FEATURES = (
    "volume_per_atom",
    "log_volume_per_atom",
    "density",
    "valence_electron_density",
    "packing_fraction",
    "n_elements",
    "n_point_group_operations",
    "nn_distance_mean",
    "nn_distance_min",
    "nn_distance_max",
    "nn_over_covalent_mean",
    "nn_over_covalent_min",
    "first_shell_coordination_mean",
    "first_shell_coordination_std",
    "neighbours_within_cutoff_mean",
    "bond_electronegativity_difference_mean",
    "bond_electronegativity_difference_max",
)
#: Names of the descriptor entries, in order.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    *(f"{prop}_{stat}" for prop in ELEMENT_PROPERTIES for stat in _STATISTICS),
    *_STRUCTURE_FEATURES,
)
#: A neighbour belongs to an atom's first shell if it is within this factor of the atom's nearest distance.
FIRST_SHELL_FACTOR = 1.25
_AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660


@dataclass(frozen=True)
class ElementTable:
    """Raw element properties indexed by atomic number (row 0 unused), missing values imputed.

    Attributes
    ----------
    values
        (max_Z + 1, len(ELEMENT_PROPERTIES)) float64.
    names
        Property names, :data:`ELEMENT_PROPERTIES` for tables built by this version.
    """

    values: np.ndarray
    names: tuple[str, ...] = ELEMENT_PROPERTIES

    def to_dict(self) -> dict:
        """JSON-serialisable form."""
        return {"names": list(self.names), "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> ElementTable:
        """Inverse of :meth:`to_dict`; checks the property names against this code."""
        names = tuple(data["names"])
        if names != ELEMENT_PROPERTIES:
            raise ValueError(f"element table properties {names} do not match this code's {ELEMENT_PROPERTIES}")
        values = np.asarray(data["values"], dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(names) or not np.all(np.isfinite(values)):
            raise ValueError(f"element table must be a finite (Z, {len(names)}) array, got shape {values.shape}")
        return cls(values=values, names=names)

    def column(self, name: str) -> np.ndarray:
        """One property for every element."""
        return self.values[:, self.names.index(name)]


def _as_float(value: object) -> float:
    try:
        return float(value)  # pymatgen FloatWithUnit and plain numbers
    except (TypeError, ValueError):
        return float("nan")


def _valence_electrons(block: str, group: int) -> float:
    """Valence electrons from the periodic-table position (s, d: the group; p: group - 10; f: 3)."""
    if block == "p":
        return float(group - 10)
    if block == "f":
        return 3.0
    return float(group)


def _pymatgen_row(z: int) -> list[float]:
    from ase.data import covalent_radii
    from pymatgen.core.periodic_table import Element

    element = Element.from_Z(z)
    row = []
    for name in ELEMENT_PROPERTIES:
        if name == "covalent_radius":
            row.append(float(covalent_radii[z]))
        elif name.startswith("block_"):
            row.append(float(element.block == name[-1]))
        elif name == "n_valence":
            row.append(_valence_electrons(element.block, element.group))
        else:
            row.append(_as_float(getattr(element, name, None)))
    return row


def element_table_from_pymatgen(max_z: int = 94) -> ElementTable:
    """Build the table from pymatgen's element data (training time only); NaNs become column medians."""
    import warnings

    rows = [[np.nan] * len(ELEMENT_PROPERTIES)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing value; those become medians
        rows += [_pymatgen_row(z) for z in range(1, max_z + 1)]
    values = np.array(rows, dtype=np.float64)
    medians = np.nanmedian(values[1:], axis=0)
    missing = np.isnan(values)
    values[missing] = np.take(medians, np.nonzero(missing)[1])
    return ElementTable(values=values)


def _site_statistics(per_site: np.ndarray) -> np.ndarray:
    """Mean, std, min and max over sites for each column of a (n_sites, n_properties) array."""
    return np.stack([per_site.mean(0), per_site.std(0), per_site.min(0), per_site.max(0)], axis=1).ravel()


def crystal_descriptors(
    numbers: np.ndarray,
    cell: np.ndarray,
    edge_index: np.ndarray,
    edge_vec: np.ndarray,
    n_operations: int,
    table: ElementTable,
    cutoff: float,
) -> np.ndarray:
    """Compute the descriptor vector of one crystal (entries named by :data:`DESCRIPTOR_NAMES`).

    Parameters
    ----------
    numbers
        (n,) atomic numbers.
    cell
        (3, 3) lattice, rows are lattice vectors, Angstrom.
    edge_index, edge_vec
        Neighbour edges within ``cutoff`` (:func:`gmt_ase.neighbors.neighbor_list` convention).
    n_operations
        Order of the crystal's point group.
    table
        Element properties.
    cutoff
        The radius the edges were built with, Angstrom (the nearest distance of an atom without neighbours).

    Returns
    -------
    numpy.ndarray
        float64 vector, finite.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    n_atoms = len(numbers)
    props = table.values[numbers]
    volume = abs(float(np.linalg.det(cell)))
    radius = table.column("covalent_radius")[numbers]
    electronegativity = table.column("X")[numbers]
    mass = table.column("atomic_mass")[numbers]

    centre, neighbour = edge_index
    lengths = np.linalg.norm(edge_vec, axis=1)
    nearest = np.full(n_atoms, float(cutoff))
    np.minimum.at(nearest, centre, lengths)
    nearest_ratio = np.full(n_atoms, np.inf)
    np.minimum.at(nearest_ratio, centre, lengths / (radius[centre] + radius[neighbour]))
    nearest_ratio[~np.isfinite(nearest_ratio)] = cutoff / (2.0 * radius[~np.isfinite(nearest_ratio)])
    in_shell = lengths <= FIRST_SHELL_FACTOR * nearest[centre]
    coordination = np.bincount(centre[in_shell], minlength=n_atoms).astype(float)
    neighbours = np.bincount(centre, minlength=n_atoms).astype(float)
    bond_dx = np.abs(electronegativity[centre[in_shell]] - electronegativity[neighbour[in_shell]])

    structure = [
        volume / n_atoms,
        np.log(volume / n_atoms),
        mass.sum() / volume * _AMU_PER_A3_TO_G_PER_CM3,
        float(table.column("n_valence")[numbers].sum() / volume),
        float(np.sum(4.0 / 3.0 * np.pi * radius**3) / volume),
        float(len(np.unique(numbers))),
        float(n_operations),
        nearest.mean(),
        nearest.min(),
        nearest.max(),
        nearest_ratio.mean(),
        nearest_ratio.min(),
        coordination.mean(),
        coordination.std(),
        neighbours.mean(),
        bond_dx.mean() if bond_dx.size else 0.0,
        bond_dx.max() if bond_dx.size else 0.0,
    ]
    return np.concatenate([_site_statistics(props), np.asarray(structure, dtype=np.float64)])


def descriptor_matrix(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack descriptor vectors into an (N, D) matrix, checking their length."""
    matrix = np.asarray(np.stack(rows), dtype=np.float64)
    if matrix.shape[1] != len(DESCRIPTOR_NAMES):
        raise ValueError(f"descriptors have {matrix.shape[1]} entries, expected {len(DESCRIPTOR_NAMES)}")
    return matrix
