"""Pseudo-symmetry: whether a crystal lies within a small distance of a centrosymmetric one.

A structure relaxed with a force field, taken from a trajectory or rattled can lose its inversion centre by
a few hundredths of an Angstrom. Its predicted piezoelectric tensor is then small (it grows from zero with
the distortion) but not zero, and a user should know that the polarity is that of noise, not of the crystal.
:func:`centrosymmetry_distance` measures how far: the RMS displacement to the nearest centrosymmetric
arrangement (continuous and invariant, unlike a symmetry search at a loose tolerance, which it replaced: the
same number sets the piezo onset, so the warning costs nothing).
"""

from __future__ import annotations

import numpy as np
from ase.geometry import minkowski_reduce

__all__ = [
    "CENTROSYMMETRY_DISTANCE",
    "MAX_ATOMS_FOR_DISTANCE",
    "NEAR_CENTROSYMMETRIC_DISTANCE",
    "centrosymmetry_distance",
    "near_centrosymmetric_warning",
]

#: Key of a crystal's :func:`centrosymmetry_distance` in a predictor's raw results (non-zero piezo tensors).
CENTROSYMMETRY_DISTANCE = "centrosymmetry_distance"
#: RMS distance (Angstrom) within which a crystal counts as nearly centrosymmetric.
NEAR_CENTROSYMMETRIC_DISTANCE = 0.1
#: :func:`centrosymmetry_distance` costs ``n_rare x n^2``; larger cells get ``inf`` (treated as far).
MAX_ATOMS_FOR_DISTANCE = 200


#: The 27 lattice shifts {-1, 0, 1}^3 searched for the nearest image in a Minkowski-reduced cell.
_SHIFTS = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij")).reshape(3, -1).T


def _nearest_image_lengths(fractional: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Length of the shortest lattice image of fractional differences (..., 3) in a Minkowski-reduced cell."""
    base = fractional - np.round(fractional)
    lengths = np.full(base.shape[:-1], np.inf)
    for shift in _SHIFTS:  # exact nearest image for a Minkowski-reduced cell
        lengths = np.minimum(lengths, np.linalg.norm((base + shift) @ cell, axis=-1))
    return lengths


def centrosymmetry_distance(cell: np.ndarray, positions: np.ndarray, numbers: np.ndarray) -> float:
    """RMS displacement (Angstrom) that makes the crystal centrosymmetric, over inversion centres tried.

    An inversion through ``c`` maps atom ``i`` onto ``2c - r_i``; each atom is paired with the nearest atom of
    its species there, and ``|2c - r_i - r_j| / 2`` is how far both must move to become images. The centres
    tried are the midpoints of one atom of the rarest species with every atom of that species (any inversion
    must map that atom onto one of them); the distance is the smallest RMS over them. It is zero exactly for a
    centrosymmetric arrangement, continuous in the positions and the cell (every piece is a minimum of
    continuous functions), and invariant to rotation, translation, atom order and supercells.
    Cells of more than :data:`MAX_ATOMS_FOR_DISTANCE` atoms return ``inf``.
    """
    numbers = np.asarray(numbers)
    if len(numbers) > MAX_ATOMS_FOR_DISTANCE:
        return float("inf")
    cell, _ = minkowski_reduce(np.asarray(cell, dtype=np.float64))  # the same lattice, shortest vectors
    fractional = np.linalg.solve(cell.T, np.asarray(positions, dtype=np.float64).T).T  # (n, 3)
    species, counts = np.unique(numbers, return_counts=True)
    rare = np.flatnonzero(numbers == species[np.argmin(counts)])
    centres = (fractional[rare[0]] + fractional[rare]) / 2.0  # (k, 3) fractional, 2c = r_0 + r_j
    squared = np.zeros(len(centres))
    for z in species:
        members = fractional[numbers == z]  # (m, 3)
        # (k, m, m): 2c - r_i - r_j for every centre, atom i and partner j of the species
        gap = 2.0 * centres[:, None, None, :] - members[None, :, None, :] - members[None, None, :, :]
        lengths = _nearest_image_lengths(gap, cell)  # (k, m, m)
        squared += np.sum((lengths.min(axis=2) / 2.0) ** 2, axis=1)
    return float(np.sqrt(squared.min() / len(numbers)))


def near_centrosymmetric_warning(rms_distance: float, threshold: float = NEAR_CENTROSYMMETRIC_DISTANCE) -> str | None:
    """Return a warning when the crystal lies within ``threshold`` (Angstrom, RMS) of a centrosymmetric one.

    ``rms_distance`` is :func:`centrosymmetry_distance` of the crystal (the predictor computes it once for the
    piezo onset). Call it for crystals with a non-zero piezo tensor.
    """
    if not rms_distance < threshold:  # also inf (cells too large to measure) and NaN
        return None
    return (
        f"within {rms_distance:.3f} A (RMS displacement) of a centrosymmetric structure: the piezoelectric tensor "
        "comes from a small distortion and may be noise; check the structure's relaxation before trusting its "
        "sign or size"
    )
