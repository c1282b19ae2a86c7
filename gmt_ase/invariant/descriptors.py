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
    "descriptor_columns",
    "element_table_from_pymatgen",
    "first_shell",
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
#: Bond-network geometry and elastic-mixing features (added in invariant-model version 2; a model stores
#: the names it was trained on, so models trained on the first 89 entries keep working).
_BOND_NETWORK_FEATURES = (
    "first_shell_bonds_per_volume",
    "bond_length_over_covalent_mean",
    "bond_length_over_covalent_std",
    "bond_angle_cosine_mean",
    "bond_angle_cosine_std",
    "steinhardt_q4_mean",
    "steinhardt_q6_mean",
    "steinhardt_q4_min",
    "steinhardt_q6_min",
    "first_shell_orientation_anisotropy",
    "first_shell_orientation_min_eigenvalue",
    "neighbour_orientation_anisotropy",
    "neighbour_orientation_min_eigenvalue",
    "volume_over_elemental_volume",
    "bond_ionicity_mean",
    "bond_ionicity_max",
    "elemental_bulk_modulus_harmonic_mean",
    "elemental_shear_modulus_harmonic_mean",
    "elemental_bulk_modulus_volume_weighted",
    "elemental_shear_modulus_volume_weighted",
    "neighbours_within_cutoff_per_volume",
    "tetrahedral_angle_fraction",
    "right_angle_fraction",
    "straight_angle_fraction",
)
#: Names of the descriptor entries, in order.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    *(f"{prop}_{stat}" for prop in ELEMENT_PROPERTIES for stat in _STATISTICS),
    *_STRUCTURE_FEATURES,
    *_BOND_NETWORK_FEATURES,
)
#: A neighbour belongs to an atom's first shell if it is within this factor of the atom's nearest distance.
FIRST_SHELL_FACTOR = 1.25
_AMU_PER_A3_TO_G_PER_CM3 = 1.66053906660
#: cm^3/mol to Angstrom^3 per atom: the same number as amu/A^3 -> g/cm^3 (both 1e24 / N_A).
_CM3_PER_MOL_TO_A3 = _AMU_PER_A3_TO_G_PER_CM3
#: Legendre polynomials P4 and P6 (Steinhardt bond-orientational order from pair cosines).
_P4 = np.polynomial.legendre.Legendre.basis(4)
_P6 = np.polynomial.legendre.Legendre.basis(6)
#: Moduli of elements (GPa) are floored here before harmonic means (a few are tiny or imputed).
_MODULUS_FLOOR = 0.5


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


def _orientation_spread(weights: np.ndarray, unit: np.ndarray) -> tuple[float, float]:
    """Anisotropy (largest minus smallest eigenvalue) and smallest eigenvalue of the weighted mean of u u^T.

    Isotropic bond networks give (0, 1/3); layers and chains give a small smallest eigenvalue.
    """
    if weights.size == 0 or weights.sum() <= 0.0:
        return 0.0, 1.0 / 3.0
    tensor = np.einsum("e,ei,ej->ij", weights, unit, unit) / weights.sum()
    eigenvalues = np.linalg.eigvalsh(tensor)
    return float(eigenvalues[-1] - eigenvalues[0]), float(eigenvalues[0])


def _angle_statistics(centre: np.ndarray, unit: np.ndarray, n_atoms: int) -> list[float]:
    """Bond-angle statistics of first-shell bonds around each atom (all pairs of bonds of one atom).

    Returns the mean and standard deviation of the angle cosines, the mean and minimum over atoms of the
    Steinhardt order parameters q4 and q6 (``q_l^2 = mean_jk P_l(cos theta_jk)`` over the atom's bond
    pairs, diagonal included; 1 for an atom with fewer than two bonds) and the fractions of angles near
    109.5, 90 and 180 degrees.
    """
    order = np.argsort(centre, kind="stable")
    centre, unit = centre[order], unit[order]
    counts = np.bincount(centre, minlength=n_atoms)
    starts = np.cumsum(counts) - counts
    pairs_per_atom = counts**2
    atom = np.repeat(np.arange(n_atoms), pairs_per_atom)
    local = np.arange(pairs_per_atom.sum()) - np.repeat(np.cumsum(pairs_per_atom) - pairs_per_atom, pairs_per_atom)
    first = starts[atom] + local // np.maximum(counts[atom], 1)
    second = starts[atom] + local % np.maximum(counts[atom], 1)
    cosine = np.clip(np.einsum("pi,pi->p", unit[first], unit[second]), -1.0, 1.0)
    bonded = counts >= 2
    order_parameters = []
    for legendre in (_P4, _P6):
        mean = np.bincount(atom, weights=legendre(cosine), minlength=n_atoms) / np.maximum(pairs_per_atom, 1)
        order_parameters.append(np.where(bonded, np.sqrt(np.clip(mean, 0.0, None)), 1.0))
    angles = cosine[first != second]
    if angles.size == 0:
        angles = np.zeros(1)
    q4, q6 = order_parameters
    return [
        float(angles.mean()),
        float(angles.std()),
        float(q4.mean()),
        float(q6.mean()),
        float(q4.min()),
        float(q6.min()),
        float(np.mean(np.abs(angles + 1.0 / 3.0) < 0.1)),
        float(np.mean(np.abs(angles) < 0.15)),
        float(np.mean(angles < -0.9)),
    ]


def _bond_network_features(
    numbers: np.ndarray,
    volume: float,
    edge_index: np.ndarray,
    edge_vec: np.ndarray,
    lengths: np.ndarray,
    nearest: np.ndarray,
    in_shell: np.ndarray,
    radius: np.ndarray,
    bond_dx: np.ndarray,
    table: ElementTable,
) -> list[float]:
    """Compute the :data:`_BOND_NETWORK_FEATURES` of one crystal.

    The arrays are those :func:`crystal_descriptors` already has: edge lengths, each atom's nearest
    distance, the first-shell mask, per-site covalent radii and the first-shell bonds' electronegativity
    differences.
    """
    n_atoms = len(numbers)
    centre, neighbour = edge_index
    atomic_volume = table.column("molar_volume")[numbers] * _CM3_PER_MOL_TO_A3
    bulk = np.clip(table.column("bulk_modulus")[numbers], _MODULUS_FLOOR, None)
    shear = np.clip(table.column("rigidity_modulus")[numbers], _MODULUS_FLOOR, None)

    shell_centre, shell_neighbour = centre[in_shell], neighbour[in_shell]
    shell_unit = edge_vec[in_shell] / lengths[in_shell, None]
    ratio = lengths[in_shell] / (radius[shell_centre] + radius[shell_neighbour])
    if ratio.size == 0:
        ratio = np.full(1, 2.0)
    ionicity = 1.0 - np.exp(-(bond_dx**2) / 4.0) if bond_dx.size else np.zeros(1)
    shell_spread = _orientation_spread(np.ones(len(shell_unit)), shell_unit)
    all_unit = edge_vec / np.maximum(lengths, 1e-12)[:, None]
    all_spread = _orientation_spread(np.exp(-lengths / nearest[centre]), all_unit)
    volume_fraction = atomic_volume / atomic_volume.sum()
    angles = _angle_statistics(shell_centre, shell_unit, n_atoms)
    return [
        float(in_shell.sum()) / 2.0 / volume,
        float(ratio.mean()),
        float(ratio.std()),
        *angles[:6],
        *shell_spread,
        *all_spread,
        volume / n_atoms / float(atomic_volume.mean()),
        float(ionicity.mean()),
        float(ionicity.max()),
        float(1.0 / np.mean(1.0 / bulk)),
        float(1.0 / np.mean(1.0 / shear)),
        float(np.sum(volume_fraction * bulk)),
        float(np.sum(volume_fraction * shear)),
        len(lengths) / volume,
        *angles[6:],
    ]


def descriptor_columns(names: Sequence[str], user: str) -> np.ndarray:
    """Positions of descriptor ``names`` in :data:`DESCRIPTOR_NAMES` (the columns a stored model reads).

    ``user`` names the model in the error, e.g. ``"invariant model uses"``; a name this code does not
    compute raises ``ValueError``.
    """
    missing = [name for name in names if name not in DESCRIPTOR_NAMES]
    if missing:
        raise ValueError(f"{user} descriptors this code does not compute: {missing}")
    return np.array([DESCRIPTOR_NAMES.index(name) for name in names], dtype=np.int64)


def first_shell(
    centre: np.ndarray, lengths: np.ndarray, n_atoms: int, no_neighbour: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each atom's nearest-neighbour distance and the edges of the first shells.

    An edge is in its centre atom's first shell when it is at most :data:`FIRST_SHELL_FACTOR` times that
    atom's nearest distance; an atom without edges gets ``no_neighbour`` as its nearest distance.
    """
    nearest = np.full(n_atoms, float(no_neighbour))
    np.minimum.at(nearest, centre, lengths)
    return nearest, lengths <= FIRST_SHELL_FACTOR * nearest[centre]


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
        Neighbour edges within ``cutoff`` (:func:`gmt_ase.graph.neighbors.neighbor_list` convention).
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
    nearest, in_shell = first_shell(centre, lengths, n_atoms, cutoff)
    nearest_ratio = np.full(n_atoms, np.inf)
    np.minimum.at(nearest_ratio, centre, lengths / (radius[centre] + radius[neighbour]))
    nearest_ratio[~np.isfinite(nearest_ratio)] = cutoff / (2.0 * radius[~np.isfinite(nearest_ratio)])
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
    bond_network = _bond_network_features(
        numbers, volume, edge_index, edge_vec, lengths, nearest, in_shell, radius, bond_dx, table
    )
    return np.concatenate([_site_statistics(props), np.asarray(structure + bond_network, dtype=np.float64)])


def descriptor_matrix(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack descriptor vectors into an (N, D) matrix, checking their length."""
    matrix = np.asarray(np.stack(rows), dtype=np.float64)
    if matrix.shape[1] != len(DESCRIPTOR_NAMES):
        raise ValueError(f"descriptors have {matrix.shape[1]} entries, expected {len(DESCRIPTOR_NAMES)}")
    return matrix
