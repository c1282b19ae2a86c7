"""The dense neighbour list agrees with ASE's on every kind of cell, including skewed and tiny ones."""

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import primitive_neighbor_list

from gmt_ase.graph import neighbors
from gmt_ase.graph.neighbors import neighbor_list


def _edge_set(edge_index, vec):
    return sorted(
        (int(i), int(j), *np.round(v, 8)) for (i, j), v in zip(edge_index.T, vec, strict=True)
    )


def _ase_edges(positions, cell, cutoff):
    i, j, d = primitive_neighbor_list("ijD", (True,) * 3, cell, positions, cutoff, self_interaction=False)
    return _edge_set(np.stack([i, j]), d)


CASES = {
    "si": bulk("Si", "diamond", a=5.43),
    "skewed": bulk("Mg", "hcp", a=3.2, c=5.2) * (1, 1, 1),
    "tiny_fcc": bulk("Cu", "fcc", a=3.6),
    "orthorhombic": bulk("NaCl", "rocksalt", a=5.6, orthorhombic=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("cutoff", [2.6, 5.0, 7.3])
def test_dense_list_matches_ase(name, cutoff):
    atoms = CASES[name].copy()
    atoms.rattle(0.05, seed=3)
    atoms.positions += 7.1  # positions outside the cell must not matter
    edges, vec = neighbor_list(atoms.positions, atoms.cell[:], cutoff)
    assert _edge_set(edges, vec) == _ase_edges(atoms.positions, atoms.cell[:], cutoff)
    assert np.all(np.linalg.norm(vec, axis=1) < cutoff)


def test_large_cells_fall_back_to_ase_with_the_same_edges(monkeypatch):
    atoms = bulk("Si", "diamond", a=5.43) * (2, 2, 2)
    dense = neighbor_list(atoms.positions, atoms.cell[:], 4.0)
    monkeypatch.setattr(neighbors, "_DENSE_LIMIT", 0)
    fallback = neighbor_list(atoms.positions, atoms.cell[:], 4.0)
    assert _edge_set(*dense) == _edge_set(*fallback)


def test_edges_point_from_centre_to_neighbour_image():
    atoms = bulk("NaCl", "rocksalt", a=5.6)
    (centre, neighbour), vec = neighbor_list(atoms.positions, atoms.cell[:], 3.0)
    assert len(centre) == 12  # 6 Cl around Na and 6 Na around Cl
    for i, j, v in zip(centre, neighbour, vec, strict=True):
        frac = np.linalg.solve(atoms.cell[:].T, atoms.positions[i] + v - atoms.positions[j])
        assert np.allclose(frac, np.round(frac), atol=1e-10)  # r_i + v is an image of r_j
