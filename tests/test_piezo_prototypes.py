"""Piezoelectric prototypes: bond tensors, exact equivariant transfer, storage."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.graph.crystal import prepare_crystal
from gmt_ase.graph.crystal_graph import crystal_graph
from gmt_ase.invariant.descriptors import ElementTable, crystal_descriptors, element_table_from_pymatgen
from gmt_ase.invariant.piezo_prototypes import PiezoPrototypes, bond_tensors
from gmt_ase.testing import random_orthogonal, rotate_tensor, transform_atoms

CUTOFF = 5.0


@pytest.fixture(scope="module")
def table() -> ElementTable:
    return element_table_from_pymatgen()


def _features(atoms: Atoms, table: ElementTable) -> dict:
    """What the predictor knows of a crystal: symmetry, standard frame, descriptors, bond tensors."""
    crystal, symmetry = prepare_crystal(atoms, cutoff=CUTOFF)
    graph = crystal_graph(crystal, CUTOFF)
    return {
        "descriptors": crystal_descriptors(
            graph.numbers, crystal.cell, graph.edge_index, graph.edge_vec, table, CUTOFF
        ),
        "space_group": symmetry.space_group_number,
        "standard_rotation": symmetry.standard_rotation,
        "standard_lattice": symmetry.standard_lattice,
        "operations": crystal.operations,
        "bonds": bond_tensors(graph.numbers, graph.edge_index, graph.edge_vec, table),
    }


def _wurtzite_tensor(e31: float, e33: float, e15: float) -> np.ndarray:
    """A 6mm piezoelectric tensor with the polar axis along z (e_ijk, C/m^2)."""
    e = np.zeros((3, 3, 3))
    e[2, 0, 0] = e[2, 1, 1] = e31
    e[2, 2, 2] = e33
    e[0, 0, 2] = e[0, 2, 0] = e[1, 1, 2] = e[1, 2, 1] = e15
    return e


def _pool(table: ElementTable, members: list[tuple[Atoms, np.ndarray, str]]) -> PiezoPrototypes:
    feats = [_features(atoms, table) for atoms, _, _ in members]
    return PiezoPrototypes.build(
        [f["space_group"] for f in feats], np.array([f["descriptors"] for f in feats]), [t for _, t, _ in members],
        [f["standard_rotation"] for f in feats], [f["bonds"] for f in feats], [i for _, _, i in members],
        norm_weight=0.5,
    )


def _predict(pool: PiezoPrototypes, atoms: Atoms, table: ElementTable, model_norm: float):
    f = _features(atoms, table)
    return pool.predict(f["descriptors"], f["space_group"], f["standard_rotation"], f["standard_lattice"],
                        f["operations"], f["bonds"], model_norm)


def test_bond_tensors_rotate_with_the_crystal_flip_under_inversion_and_vanish_with_a_centre(table) -> None:
    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    reference = _features(zno, table)["bonds"]
    assert np.linalg.norm(reference[0]) > 1e-3
    ops = _features(zno, table)["operations"]
    np.testing.assert_allclose(reynolds_projection(reference, ops, rank=3), reference, atol=1e-12)
    for q in (random_orthogonal(1, proper=True), random_orthogonal(2, proper=False), -np.eye(3)):
        moved = _features(transform_atoms(zno, q), table)["bonds"]
        np.testing.assert_allclose(moved, np.stack([rotate_tensor(b, q) for b in reference]), atol=1e-12)
    nacl = _features(bulk("NaCl", "rocksalt", a=5.64), table)["bonds"]
    np.testing.assert_allclose(nacl, 0.0, atol=1e-12)


def test_a_known_crystal_gets_its_own_tensor_in_any_orientation_cell_and_handedness(table) -> None:
    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    truth = _wurtzite_tensor(-0.6, 1.3, -0.5)
    gan = bulk("GaN", "wurtzite", a=3.19, c=5.19)
    pool = _pool(table, [(zno, truth, "zno"), (gan, _wurtzite_tensor(-0.3, 0.6, -0.3), "gan")])
    norm = np.linalg.norm(truth)
    tensor, source, distance = _predict(pool, zno, table, model_norm=norm)
    assert source == "zno" and distance == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(tensor, truth, atol=1e-10)
    # The prediction transforms with the crystal: rotations, rotoreflections, inversion, and other cells.
    for q in (random_orthogonal(3, proper=True), random_orthogonal(4, proper=False), -np.eye(3)):
        moved, _, _ = _predict(pool, transform_atoms(zno, q), table, model_norm=norm)
        np.testing.assert_allclose(moved, rotate_tensor(truth, q), atol=1e-10)
    shuffled = zno[[3, 1, 0, 2]].repeat((1, 2, 1))
    np.testing.assert_allclose(_predict(pool, shuffled, table, model_norm=norm)[0], truth, atol=1e-10)
    # The norm blends the prototype's with the invariant model's in log space (weight 0.5 here).
    scaled, _, _ = _predict(pool, zno, table, model_norm=4 * norm)
    np.testing.assert_allclose(scaled, 2 * truth, atol=1e-10)


def test_a_new_crystal_takes_the_nearest_prototype_of_its_space_group_with_exact_symmetry(table) -> None:
    zno, gan = bulk("ZnO", "wurtzite", a=3.25, c=5.21), bulk("GaN", "wurtzite", a=3.19, c=5.19)
    pool = _pool(table, [(zno, _wurtzite_tensor(-0.6, 1.3, -0.5), "zno"),
                         (gan, _wurtzite_tensor(-0.3, 0.6, -0.3), "gan"),
                         (bulk("GaAs", "zincblende", a=5.65), np.zeros((3, 3, 3)), "zero")])
    assert pool.ids == ("zno", "gan")  # zero tensors carry no direction
    aln = transform_atoms(bulk("AlN", "wurtzite", a=3.11, c=4.98), random_orthogonal(5, proper=False))
    tensor, source, distance = _predict(pool, aln, table, model_norm=1.0)
    assert source in ("zno", "gan") and distance > 0
    ops = _features(aln, table)["operations"]
    np.testing.assert_allclose(reynolds_projection(tensor, ops, rank=3), tensor, atol=1e-12)
    assert np.linalg.norm(tensor) == pytest.approx(np.sqrt(pool.norms[pool.ids.index(source)]))
    # Nothing of its space group: no prototype (the caller keeps the network's tensor).
    assert _predict(pool, bulk("GaAs", "zincblende", a=5.65), table, model_norm=1.0) is None
    assert _predict(pool, aln, table, model_norm=0.0) is None


def test_prototypes_round_trip_and_refuse_corrupt_data(table) -> None:
    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    pool = _pool(table, [(zno, _wurtzite_tensor(-0.6, 1.3, -0.5), "zno")])
    again = PiezoPrototypes.from_dict(pool.to_dict())
    for field in ("space_groups", "descriptors", "tensors", "norms", "relations"):
        np.testing.assert_array_equal(getattr(again, field), getattr(pool, field))
    assert again.ids == pool.ids and again.norm_weight == pool.norm_weight
    data = pool.to_dict()
    with pytest.raises(ValueError, match="format"):
        PiezoPrototypes.from_dict({**data, "format_version": 99})
    with pytest.raises(ValueError, match="corrupt"):
        PiezoPrototypes.from_dict({**data, "tensors": data["tensors"][:-5]})
    with pytest.raises(ValueError, match="corrupt"):
        PiezoPrototypes.from_dict({**data, "n": 2})
    with pytest.raises(ValueError, match="norm_weight"):
        PiezoPrototypes.from_dict({**data, "norm_weight": 1.5})


def test_a_checkpoint_with_prototypes_but_no_invariant_model_or_corrupt_prototypes_is_refused(tmp_path, table) -> None:
    import torch

    from gmt_ase.inference.io import make_test_checkpoint
    from gmt_ase.inference.predictor import TensorPredictor

    zno = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    prototypes = _pool(table, [(zno, _wurtzite_tensor(-0.6, 1.3, -0.5), "zno")]).to_dict()
    path = make_test_checkpoint(tmp_path / "plain.pt")
    payload = torch.load(path, weights_only=True)
    torch.save({**payload, "piezo_prototypes": prototypes}, tmp_path / "orphan.pt")
    with pytest.raises(ValueError, match="needs an invariant model"):
        TensorPredictor.from_checkpoint(tmp_path / "orphan.pt", device="cpu")
    with pytest.raises(ValueError, match="corrupt piezo prototype data"):
        PiezoPrototypes.from_dict({**prototypes, "norms": b"not zlib"})


def test_distant_or_missing_prototypes_are_warned_about() -> None:
    from gmt_ase.invariant.piezo_prototypes import FAR_DISTANCE, distant_prototype_warning

    assert distant_prototype_warning(0.0) is None
    assert distant_prototype_warning(FAR_DISTANCE - 1e-6) is None
    assert "far away" in distant_prototype_warning(FAR_DISTANCE + 1.0)
    assert "no known crystal" in distant_prototype_warning(float("inf"))
