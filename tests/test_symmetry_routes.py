"""The one-search route of gmt_ase.core.symmetry equals DESIGN.md's primitive-cell route on real crystals.

The reference below is the textbook algorithm (primitive cell in the input orientation, then the
dataset of that cell); the package uses a cheaper route. They must give the same operations for ideal
cells, supercells and noisy cells.
"""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import spglib
from pymatgen.core import Structure

from gmt_ase.core.symmetry import DEFAULT_SYMPREC, _cartesian_operations, analyze_symmetry, cell_arrays

DATA = Path(__file__).resolve().parents[1] / "data" / "matminer_mp_tensors_2018"


def _primitive_route(structure, symprec=DEFAULT_SYMPREC):
    cell = cell_arrays(structure)
    primitive = spglib.standardize_cell(cell, to_primitive=True, no_idealize=True, symprec=symprec)
    dataset = spglib.get_symmetry_dataset(primitive, symprec=symprec)
    rotations = np.unique(np.asarray(dataset.rotations, dtype=int), axis=0)
    return _cartesian_operations(rotations, np.asarray(primitive[0], dtype=float))


def _distance(ops_a, ops_b):
    assert len(ops_a) == len(ops_b)
    return max(min(np.abs(a - b).max() for b in ops_b) for a in ops_a)


def _structures(count=40):
    records = json.load(gzip.open(DATA / "elastic_dejong2015.json.gz"))["records"]
    rng = np.random.default_rng(7)
    picks = rng.choice(len(records), size=count, replace=False)
    return [Structure.from_dict(records[i]["structure"]) for i in picks]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("variant", ["as_given", "supercell_2x1x1", "noisy_1e-3"])
def test_one_search_route_equals_primitive_route(variant):
    rng = np.random.default_rng(3)
    for structure in _structures():
        if variant == "supercell_2x1x1":
            structure = structure.copy()
            structure.make_supercell([2, 1, 1])
        elif variant == "noisy_1e-3":
            structure = Structure(
                structure.lattice.matrix + rng.normal(0, 1e-3, (3, 3)),
                structure.species,
                structure.cart_coords + rng.normal(0, 1e-3, (len(structure), 3)),
                coords_are_cartesian=True,
            )
        ours = analyze_symmetry(structure).operations
        assert _distance(ours, _primitive_route(structure)) < 1e-12
