"""How a predicted piezoelectric tensor grows from zero as a crystal moves away from centrosymmetry.

The network's piezo tensor is a magnitude times a unit direction, and the invariant model and the
prototypes set the magnitude from descriptors that barely notice a 0.01 A distortion; so a rattled
rock salt that loses its inversion centre got the full magnitude of a typical piezoelectric. Physically the
response vanishes with the polar distortion. Every predicted piezo tensor is therefore multiplied by
``g(D) = t^p / sqrt(1 + t^(2p))``, ``t = D / ONSET_DISTANCE``, where ``D`` is the RMS displacement that
makes the structure centrosymmetric (:func:`gmt_ase.graph.pseudosymmetry.centrosymmetry_distance`): 1 for a
clearly polar crystal, of order ``t^p`` for a nearly centrosymmetric one, and continuous (C1) in the
positions. Of the 772 piezoelectric records of our data, 2.5 % (19) have ``D < 0.078 A`` (``g < 0.9``);
random 0.01 / 0.02 A rattles give ``D`` of about 0.011 / 0.023 A, so ``g`` of about 0.005 / 0.04 (with 0.055 A,
rattled CaF2 kept up to 0.15 C/m^2 at 0.02 A).
"""

from __future__ import annotations

import numpy as np

from gmt_ase.graph.pseudosymmetry import centrosymmetry_distance

__all__ = ["ONSET_DISTANCE", "ONSET_POWER", "onset_factor", "piezo_onset_factor"]

#: Distance from centrosymmetry (Angstrom) at which the onset factor is 1/sqrt(2).
ONSET_DISTANCE = 0.065
#: Power of the onset: the factor grows as (D / ONSET_DISTANCE)^ONSET_POWER for small D.
ONSET_POWER = 3


def onset_factor(distance: float) -> float:
    """``g(D)`` of the module docstring for a distance ``D`` in Angstrom (``inf``: 1)."""
    if not np.isfinite(distance):
        return 1.0
    t = (distance / ONSET_DISTANCE) ** ONSET_POWER
    return float(t / np.sqrt(1.0 + t * t))


def piezo_onset_factor(cell: np.ndarray, positions: np.ndarray, numbers: np.ndarray) -> tuple[float, float]:
    """Return the onset factor of one crystal and its distance from centrosymmetry (Angstrom).

    Cartesian positions and cell, rows are lattice vectors.
    """
    distance = centrosymmetry_distance(cell, positions, numbers)
    return onset_factor(distance), distance
