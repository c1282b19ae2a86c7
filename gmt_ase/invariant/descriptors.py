"""Rotation-invariant crystal descriptors for the invariant learner: composition and bond statistics.

A crystal's isotropic moduli and dielectric means are scalars, and for scalars a fixed-length descriptor
fed to gradient-boosted trees is a strong learner on a few thousand crystals (DESIGN.md section 7). The
descriptor is a pure NumPy function of the crystal's arrays, its neighbour edges (the same edges the
network uses, so no second neighbour list) and an :class:`ElementTable` of raw element properties. It is
invariant to rotation, reflection, translation, atom order and supercells by construction (it only uses
site-averaged statistics, distances and the volume per atom) and continuous in the positions and the cell:
bonds enter the first shell and leave the cutoff through smooth weights, angle windows are smooth, and
nothing depends on detected symmetry (a space group or point-group order would jump at the tolerance).

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
    "cutoff_taper",
    "first_shell",
    "kinked_columns",
    "shell_weights",
    "smooth_step",
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
#: A neighbour belongs to an atom's first shell if it is within this factor of the atom's nearest distance
#: (the hard shell of the piezo prototypes' bond tensors; the descriptors use the smooth version below).
FIRST_SHELL_FACTOR = 1.25
#: Half width of the smooth first-shell edge: weight 1 below (factor - width) x nearest, 0 above (factor + width).
FIRST_SHELL_WIDTH = 0.1
#: Edges fade out over this last stretch before the cutoff (Angstrom), so no count jumps when a neighbour
#: crosses the cutoff.
CUTOFF_TAPER = 1.0
#: Half widths (in cosine) of the smooth windows counting angles near 109.5, 90 and 180 degrees.
_ANGLE_WINDOWS = ((-1.0 / 3.0, 0.15), (0.0, 0.2), (-1.0, 0.15))
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


def smooth_step(x: np.ndarray) -> np.ndarray:
    """C2 step: 0 for ``x <= 0``, 1 for ``x >= 1``, ``6x^5 - 15x^4 + 10x^3`` in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def _bump(x: np.ndarray) -> np.ndarray:
    """C1 bump on [-1, 1]: ``(1 - x^2)^2``, zero outside."""
    return np.clip(1.0 - x * x, 0.0, None) ** 2


def _weighted_mean_std(values: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    total = weights.sum()
    if values.size == 0 or total <= 0.0:
        return 0.0, 0.0
    mean = float(np.sum(weights * values) / total)
    return mean, float(np.sqrt(max(np.sum(weights * (values - mean) ** 2) / total, 0.0)))


def _orientation_spread(weights: np.ndarray, unit: np.ndarray) -> tuple[float, float]:
    """Anisotropy (largest minus smallest eigenvalue) and smallest eigenvalue of the weighted mean of u u^T.

    Isotropic bond networks give (0, 1/3); layers and chains give a small smallest eigenvalue.
    """
    if weights.size == 0 or weights.sum() <= 0.0:
        return 0.0, 1.0 / 3.0
    tensor = np.einsum("e,ei,ej->ij", weights, unit, unit) / weights.sum()
    eigenvalues = np.linalg.eigvalsh(tensor)
    return float(eigenvalues[-1] - eigenvalues[0]), float(eigenvalues[0])


def _angle_statistics(centre: np.ndarray, unit: np.ndarray, weight: np.ndarray, n_atoms: int) -> list[float]:
    """Bond-angle statistics of the (smooth) first-shell bonds around each atom.

    Every pair of bonds of one atom counts with the product of their shell weights. Returns the weighted
    mean and standard deviation of the angle cosines, the mean and minimum over atoms of the Steinhardt
    order parameters ``q_l^2 = sum_jk w_j w_k P_l(cos theta_jk) / (sum_j w_j)^2`` (l = 4, 6; diagonal
    included, so a lone bond gives 1) and the weighted shares of angles near 109.5, 90 and 180 degrees
    (smooth windows). All are continuous in the positions: a bond entering the shell enters with weight 0.
    """
    kept = np.flatnonzero(weight > 0.0)  # bonds outside every shell add exact zeros to every sum below
    order = kept[np.argsort(centre[kept], kind="stable")]
    centre, unit, weight = centre[order], unit[order], weight[order]
    counts = np.bincount(centre, minlength=n_atoms)
    starts = np.cumsum(counts) - counts
    pairs_per_atom = counts**2
    atom = np.repeat(np.arange(n_atoms), pairs_per_atom)
    local = np.arange(pairs_per_atom.sum()) - np.repeat(np.cumsum(pairs_per_atom) - pairs_per_atom, pairs_per_atom)
    first = starts[atom] + local // np.maximum(counts[atom], 1)
    second = starts[atom] + local % np.maximum(counts[atom], 1)
    cosine = np.clip(np.einsum("pi,pi->p", unit[first], unit[second]), -1.0, 1.0)
    pair_weight = weight[first] * weight[second]
    norm = np.bincount(atom, weights=pair_weight, minlength=n_atoms)
    order_parameters = []
    for legendre in (_P4, _P6):
        summed = np.bincount(atom, weights=pair_weight * legendre(cosine), minlength=n_atoms)
        order_parameters.append(np.where(norm > 0, np.sqrt(np.clip(summed / np.maximum(norm, 1e-300), 0.0, None)), 1.0))
    off = first != second
    angles, angle_weight = cosine[off], pair_weight[off]
    mean, std = _weighted_mean_std(angles, angle_weight)
    total = max(float(angle_weight.sum()), 1e-12)
    shares = [float(np.sum(angle_weight * _bump((angles - c0) / h)) / total) for c0, h in _ANGLE_WINDOWS]
    q4, q6 = order_parameters
    return [mean, std, float(q4.mean()), float(q6.mean()), float(q4.min()), float(q6.min()), *shares]


def _bond_network_features(
    numbers: np.ndarray,
    volume: float,
    edges: _Edges,
    radius: np.ndarray,
    table: ElementTable,
) -> list[float]:
    """Compute the :data:`_BOND_NETWORK_FEATURES` of one crystal from its weighted edges."""
    n_atoms = len(numbers)
    atomic_volume = table.column("molar_volume")[numbers] * _CM3_PER_MOL_TO_A3
    bulk = np.clip(table.column("bulk_modulus")[numbers], _MODULUS_FLOOR, None)
    shear = np.clip(table.column("rigidity_modulus")[numbers], _MODULUS_FLOOR, None)

    unit = edges.vec / np.maximum(edges.length, 1e-12)[:, None]
    shell = edges.shell
    ratio = edges.length / (radius[edges.centre] + radius[edges.neighbour])
    ratio_mean, ratio_std = _weighted_mean_std(ratio, shell) if shell.sum() > 0 else (2.0, 0.0)
    ionicity = 1.0 - np.exp(-(edges.dx**2) / 4.0)
    ionicity_mean, _ = _weighted_mean_std(ionicity, shell)
    shell_spread = _orientation_spread(shell, unit)
    all_spread = _orientation_spread(np.exp(-edges.length / edges.nearest[edges.centre]) * edges.taper, unit)
    volume_fraction = atomic_volume / atomic_volume.sum()
    angles = _angle_statistics(edges.centre, unit, shell, n_atoms)
    return [
        float(shell.sum()) / 2.0 / volume,
        ratio_mean,
        ratio_std,
        *angles[:6],
        *shell_spread,
        *all_spread,
        volume / n_atoms / float(atomic_volume.mean()),
        ionicity_mean,
        float(np.max(shell * ionicity, initial=0.0)),
        float(1.0 / np.mean(1.0 / bulk)),
        float(1.0 / np.mean(1.0 / shear)),
        float(np.sum(volume_fraction * bulk)),
        float(np.sum(volume_fraction * shear)),
        float(edges.taper.sum()) / volume,
        *angles[6:],
    ]


@dataclass(frozen=True)
class _Edges:
    """A crystal's neighbour edges with the smooth weights every bond statistic uses."""

    centre: np.ndarray  # (E,) centre atom of each edge
    neighbour: np.ndarray  # (E,)
    vec: np.ndarray  # (E, 3) Angstrom
    length: np.ndarray  # (E,)
    nearest: np.ndarray  # (n_atoms,) each atom's nearest-neighbour distance
    shell: np.ndarray  # (E,) first-shell weight in [0, 1]
    taper: np.ndarray  # (E,) cutoff taper in [0, 1]
    dx: np.ndarray  # (E,) electronegativity difference of the bond's atoms


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
    """Each atom's nearest-neighbour distance and the edges of the (hard) first shells.

    An edge is in its centre atom's first shell when it is at most :data:`FIRST_SHELL_FACTOR` times that
    atom's nearest distance; an atom without edges gets ``no_neighbour`` as its nearest distance.
    """
    nearest = np.full(n_atoms, float(no_neighbour))
    np.minimum.at(nearest, centre, lengths)
    return nearest, lengths <= FIRST_SHELL_FACTOR * nearest[centre]


def shell_weights(lengths: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """Smooth first-shell membership of edges of the given lengths around atoms at ``nearest`` distance.

    1 up to ``(FIRST_SHELL_FACTOR - FIRST_SHELL_WIDTH) x nearest``, 0 from
    ``(FIRST_SHELL_FACTOR + FIRST_SHELL_WIDTH) x nearest``, a C2 step in between.
    """
    ratio = lengths / nearest
    return smooth_step((FIRST_SHELL_FACTOR + FIRST_SHELL_WIDTH - ratio) / (2.0 * FIRST_SHELL_WIDTH))


def cutoff_taper(lengths: np.ndarray, cutoff: float) -> np.ndarray:
    """1 up to ``cutoff - CUTOFF_TAPER``, falling smoothly (C2) to 0 at the cutoff."""
    return smooth_step((cutoff - lengths) / CUTOFF_TAPER)


def _weighted_edges(
    numbers: np.ndarray, edge_index: np.ndarray, edge_vec: np.ndarray, table: ElementTable, cutoff: float
) -> _Edges:
    centre, neighbour = np.asarray(edge_index[0]), np.asarray(edge_index[1])
    vec = np.asarray(edge_vec, dtype=np.float64)
    length = np.linalg.norm(vec, axis=1)
    nearest, _ = first_shell(centre, length, len(numbers), cutoff)
    electronegativity = table.column("X")[numbers]
    return _Edges(
        centre=centre,
        neighbour=neighbour,
        vec=vec,
        length=length,
        nearest=nearest,
        shell=shell_weights(length, nearest[centre]),
        taper=cutoff_taper(length, cutoff),
        dx=np.abs(electronegativity[centre] - electronegativity[neighbour]),
    )


def crystal_descriptors(
    numbers: np.ndarray,
    cell: np.ndarray,
    edge_index: np.ndarray,
    edge_vec: np.ndarray,
    table: ElementTable,
    cutoff: float,
) -> np.ndarray:
    """Compute the descriptor vector of one crystal (entries named by :data:`DESCRIPTOR_NAMES`).

    Every entry is a continuous function of the positions and the cell (bonds enter shells and the
    cutoff with weight zero; no symmetry detection, no counts), and a site or bond average, so it is
    invariant to rotation, reflection, translation, atom order and supercells.

    Parameters
    ----------
    numbers
        (n,) atomic numbers.
    cell
        (3, 3) lattice, rows are lattice vectors, Angstrom.
    edge_index, edge_vec
        Neighbour edges within ``cutoff`` (:func:`gmt_ase.graph.neighbors.neighbor_list` convention).
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
    volume = abs(float(np.linalg.det(cell)))
    radius = table.column("covalent_radius")[numbers]
    mass = table.column("atomic_mass")[numbers]
    edges = _weighted_edges(numbers, edge_index, edge_vec, table, cutoff)

    nearest_ratio = np.full(n_atoms, np.inf)
    np.minimum.at(nearest_ratio, edges.centre, edges.length / (radius[edges.centre] + radius[edges.neighbour]))
    lonely = ~np.isfinite(nearest_ratio)
    nearest_ratio[lonely] = cutoff / (2.0 * radius[lonely])
    coordination = np.bincount(edges.centre, weights=edges.shell, minlength=n_atoms)
    neighbours = np.bincount(edges.centre, weights=edges.taper, minlength=n_atoms)
    dx_mean, _ = _weighted_mean_std(edges.dx, edges.shell)

    structure = [
        volume / n_atoms,
        np.log(volume / n_atoms),
        mass.sum() / volume * _AMU_PER_A3_TO_G_PER_CM3,
        float(table.column("n_valence")[numbers].sum() / volume),
        float(np.sum(4.0 / 3.0 * np.pi * radius**3) / volume),
        float(len(np.unique(numbers))),
        edges.nearest.mean(),
        edges.nearest.min(),
        edges.nearest.max(),
        nearest_ratio.mean(),
        nearest_ratio.min(),
        coordination.mean(),
        coordination.std(),
        neighbours.mean(),
        dx_mean,
        float(np.max(edges.shell * edges.dx, initial=0.0)),
    ]
    bond_network = _bond_network_features(numbers, volume, edges, radius, table)
    return np.concatenate([_site_statistics(table.values[numbers]), np.asarray(structure + bond_network)])


def kinked_columns(names: Sequence[str]) -> np.ndarray:
    """Mask of the geometric descriptors with a kink at symmetric structures (not the composition statistics)."""
    composition = {f"{prop}_{stat}" for prop in ELEMENT_PROPERTIES for stat in ("mean", "std", "min", "max")}
    marks = ("_std", "_min", "_max", "anisotropy", "min_eigenvalue")
    return np.array([name not in composition and any(mark in name for mark in marks) for name in names])


def descriptor_matrix(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack descriptor vectors into an (N, D) matrix, checking their length."""
    matrix = np.asarray(np.stack(rows), dtype=np.float64)
    if matrix.shape[1] != len(DESCRIPTOR_NAMES):
        raise ValueError(f"descriptors have {matrix.shape[1]} entries, expected {len(DESCRIPTOR_NAMES)}")
    return matrix
