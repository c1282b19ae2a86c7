"""Physical descriptors of the chemical elements, standardised, as a lookup table for the network.

A learned species embedding only knows the elements it has seen often; with a few thousand training
crystals most elements appear in a handful of them. Feeding the network the periodic-table position
and a few atomic properties (electronegativity, radius, ionisation energy, ...) lets what it learns for
one element carry over to its chemical neighbours. The values come from pymatgen's element data; the
table is computed once at training time and stored in the checkpoint, so inference never needs it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from gmt_ase.nn.model import GMTNet

__all__ = ["ELEMENT_FEATURE_NAMES", "element_feature_table", "fill_element_table"]

_BLOCKS = ("s", "p", "d", "f")
ELEMENT_FEATURE_NAMES: tuple[str, ...] = (
    "row",
    "group",
    "electronegativity",
    "electronegativity_missing",
    "atomic_radius",
    "ionization_energy",
    "electron_affinity",
    "mendeleev_number",
    "molar_volume",
    "log_atomic_mass",
    "max_oxidation_state",
    "min_oxidation_state",
    *(f"block_{b}" for b in _BLOCKS),
)


def _raw_features(z: int) -> list[float]:
    from pymatgen.core.periodic_table import Element

    element = Element.from_Z(z)

    def number(value: object) -> float:
        try:
            return float(value)  # pymatgen FloatWithUnit and plain numbers
        except (TypeError, ValueError):
            return float("nan")

    electronegativity = number(element.X)
    return [
        float(element.row),
        float(element.group),
        electronegativity,
        float(np.isnan(electronegativity)),
        number(element.atomic_radius),
        number(element.ionization_energy),
        number(element.electron_affinity),
        number(element.mendeleev_no),
        number(element.molar_volume),
        float(np.log(float(element.atomic_mass))),
        float(element.max_oxidation_state),
        float(element.min_oxidation_state),
        *(float(element.block == b) for b in _BLOCKS),
    ]


def element_feature_table(num_species: int) -> np.ndarray:
    """Standardised element descriptors, one row per atomic number.

    Parameters
    ----------
    num_species
        Number of rows; row ``z`` describes atomic number ``z`` (row 0, no element, is zero).

    Returns
    -------
    numpy.ndarray
        ``(num_species, len(ELEMENT_FEATURE_NAMES))`` float64 array. Every column has zero mean and unit
        variance over the elements 1 .. num_species-1; a property pymatgen does not know for an element
        is set to the column mean (zero), and ``electronegativity_missing`` flags the noble gases.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about properties it has no value for
        raw = np.array([_raw_features(z) for z in range(1, num_species)], dtype=float)
    mean = np.nanmean(raw, axis=0)
    std = np.nanstd(raw, axis=0)
    std[std == 0] = 1.0
    standard = np.nan_to_num((raw - mean) / std, nan=0.0)
    return np.vstack([np.zeros((1, raw.shape[1])), standard])


def fill_element_table(model: GMTNet) -> GMTNet:
    """Write :func:`element_feature_table` into the model's ``element_table`` buffer (in place).

    The model must have been built with ``element_features == len(ELEMENT_FEATURE_NAMES)``; returns it.
    """
    table = element_feature_table(model.config.num_species)
    with torch.no_grad():
        model.element_table.copy_(torch.as_tensor(table))
    return model
