"""The one path from a structure to the model's input: validate once, detect symmetry once, keep arrays.

:func:`prepare_crystal` is used by the batched API (and so by the calculator, the command line and
evaluation) and by training (:func:`gmt_ase.training.samples.make_sample`), so a crystal the model is
trained on passed exactly the checks of a crystal it predicts for. The graph of a :class:`CrystalInput`
is :func:`gmt_ase.graph.crystal_graph.crystal_graph`. NumPy, ASE and spglib only (no torch).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from gmt_ase.core.symmetry import DEFAULT_SYMPREC, SymmetryInfo, analyze_cell
from gmt_ase.graph.neighbors import NeighborEdges
from gmt_ase.graph.validation import MIN_DISTANCE, check_min_distance, validate_structure

__all__ = ["ALL_ELEMENTS", "CrystalInput", "prepare_crystal"]

#: Every chemical element (training accepts any; a predictor accepts its checkpoint's species).
ALL_ELEMENTS: frozenset[int] = frozenset(range(1, len(chemical_symbols)))


@dataclass(frozen=True)
class CrystalInput:
    """One crystal as arrays.

    Attributes
    ----------
    numbers
        (n,) atomic numbers.
    positions
        (n, 3) Cartesian positions, Angstrom.
    cell
        (3, 3) lattice, rows are lattice vectors, Angstrom.
    operations
        (G, 3, 3) Cartesian point-group operations (:func:`gmt_ase.core.symmetry.analyze_symmetry`).
    edges
        The crystal's one neighbour list (within the model's cutoff), if :func:`prepare_crystal` was given
        one: the distance check, the graph and the applicability warnings all read it.
    space_group_number
        International space-group number (0: unknown).
    standard_rotation, standard_lattice
        spglib's standard frame (:class:`gmt_ase.core.symmetry.SymmetryInfo`), for the piezoelectric
        prototypes; ``None`` when unknown.
    """

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    operations: np.ndarray
    edges: NeighborEdges | None = None
    space_group_number: int = 0
    standard_rotation: np.ndarray | None = None
    standard_lattice: np.ndarray | None = None


def prepare_crystal(
    structure: Any,
    species: Collection[int] = ALL_ELEMENTS,
    symprec: float = DEFAULT_SYMPREC,
    *,
    cutoff: float | None = None,
    model_name: str = "model",
) -> tuple[CrystalInput, SymmetryInfo]:
    """Validate one structure, detect its symmetry and return it as arrays (the input is not modified).

    Parameters
    ----------
    structure
        ASE ``Atoms`` or pymatgen ``Structure``.
    species
        Atomic numbers the model supports (default: every element).
    symprec
        spglib tolerance in Angstrom.
    cutoff
        The model's neighbour cutoff in Angstrom: the neighbour list is built once, at this radius, and
        kept in :attr:`CrystalInput.edges` (None: the distance check builds a short one of its own).
    model_name
        Model name used in error messages.

    Returns
    -------
    tuple of (CrystalInput, SymmetryInfo)
        The crystal's arrays and its symmetry.

    Raises
    ------
    gmt_ase.graph.validation.InvalidStructureError
        (a ``ValueError``) for a structure the model must not see.

    """
    atoms = validate_structure(structure, species, model_name=model_name, check_distances=cutoff is None)
    cell = np.array(atoms.cell[:], dtype=float)
    numbers = np.array(atoms.numbers, dtype=int)
    edges = None
    if cutoff is not None:  # one neighbour list for the distance check, the graph and the warnings
        edges = NeighborEdges.build(atoms.positions, cell, max(float(cutoff), MIN_DISTANCE))
        check_min_distance(atoms, MIN_DISTANCE, edges)
    symmetry = analyze_cell(cell, atoms.get_scaled_positions(wrap=False), numbers, symprec)  # checked above
    crystal = CrystalInput(
        numbers=numbers,
        positions=np.array(atoms.positions, dtype=float),
        cell=cell,
        operations=symmetry.operations,
        edges=edges,
        space_group_number=symmetry.space_group_number,
        standard_rotation=symmetry.standard_rotation,
        standard_lattice=symmetry.standard_lattice,
    )
    return crystal, symmetry
