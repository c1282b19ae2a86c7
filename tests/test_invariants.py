"""The invariant learner: descriptors, trees as arrays, and exact, symmetry-keeping rescaling."""

from __future__ import annotations

import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from gmt_ase.core.invariants import dielectric_mean, piezo_norm, rescale_dielectric, rescale_elastic, vrh_moduli
from gmt_ase.core.symmetry import analyze_symmetry, reynolds_projection
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.graph.neighbors import neighbor_list
from gmt_ase.invariant.boosted_trees import TreeEnsemble, combine_ensembles, from_lightgbm
from gmt_ase.invariant.descriptors import (
    DESCRIPTOR_NAMES,
    ElementTable,
    crystal_descriptors,
    element_table_from_pymatgen,
)
from gmt_ase.invariant.invariant_model import INVARIANTS, InvariantModel, InvariantTarget, network_invariants
from gmt_ase.testing import random_orthogonal, rotate_tensor, transform_atoms


@pytest.fixture(scope="module")
def table() -> ElementTable:
    return element_table_from_pymatgen()


def _stiffness(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(6, 6))
    return voigt_to_full(a @ a.T * 20 + 60 * np.eye(6))


def _descriptors(atoms, table: ElementTable) -> np.ndarray:
    edge_index, edge_vec = neighbor_list(atoms.positions, atoms.cell[:], 5.0)
    return crystal_descriptors(atoms.numbers, atoms.cell[:], edge_index, edge_vec, table, 5.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vrh_moduli_match_pymatgen(seed: int) -> None:
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    stiffness = _stiffness(seed)
    reference = ElasticTensor(stiffness)
    k_vrh, g_vrh = vrh_moduli(stiffness)
    assert k_vrh == pytest.approx(reference.k_vrh, rel=1e-12)
    assert g_vrh == pytest.approx(reference.g_vrh, rel=1e-12)


def test_rescale_elastic_sets_moduli_and_keeps_symmetry_and_stability() -> None:
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    ops = analyze_symmetry(atoms).operations
    stiffness = reynolds_projection(_stiffness(3), ops, rank=4)
    k0, g0 = vrh_moduli(stiffness)
    scaled = rescale_elastic(stiffness, 1.7, 0.6)
    k1, g1 = vrh_moduli(scaled)
    assert k1 == pytest.approx(1.7 * k0, rel=1e-12)
    assert g1 == pytest.approx(0.6 * g0, rel=1e-12)
    np.testing.assert_allclose(reynolds_projection(scaled, ops, rank=4), scaled, atol=1e-10)
    from gmt_ase.core.tensors import mandel_from_full

    assert np.linalg.eigvalsh(mandel_from_full(scaled)).min() > 0


def test_rescale_elastic_commutes_with_rotations_and_reflections() -> None:
    stiffness = _stiffness(4)
    for seed, proper in ((5, True), (6, False)):
        q = random_orthogonal(seed, proper=proper)
        np.testing.assert_allclose(
            rescale_elastic(rotate_tensor(stiffness, q), 1.3, 0.8),
            rotate_tensor(rescale_elastic(stiffness, 1.3, 0.8), q),
            atol=1e-9,
        )


def test_rescale_elastic_refuses_non_positive_factors() -> None:
    with pytest.raises(ValueError, match="positive"):
        rescale_elastic(_stiffness(0), 0.0, 1.0)


def test_rescale_dielectric_hits_the_mean_and_keeps_the_shape() -> None:
    eps = np.diag([3.0, 3.0, 5.0])
    scaled = rescale_dielectric(eps, 0.5, vacuum=1.0)
    assert dielectric_mean(scaled) == pytest.approx(1 + 0.5 * (dielectric_mean(eps) - 1))
    np.testing.assert_allclose(scaled, np.diag([2.0, 2.0, 3.0]))
    np.testing.assert_allclose(rescale_dielectric(eps, 2.0, vacuum=0.0), 2 * eps)


def test_trees_as_arrays_predict_exactly_what_lightgbm_predicts() -> None:
    import lightgbm
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = x[:, 0] ** 2 + np.sin(3 * x[:, 1]) + 0.05 * rng.normal(size=400)
    booster = lightgbm.train({"objective": "l1", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(x, y), 80)
    trees = TreeEnsemble.from_dict(from_lightgbm(booster).to_dict())
    test = rng.normal(size=(50, 6))
    np.testing.assert_allclose(trees.predict(test), booster.predict(test), rtol=0, atol=1e-12)
    params = {"objective": "l1", "verbose": -1, "num_leaves": 7, "bagging_fraction": 0.7, "bagging_freq": 1}
    bagged = [lightgbm.train({**params, "seed": seed}, lightgbm.Dataset(x, y), 40 + 10 * seed) for seed in range(3)]
    averaged = combine_ensembles([from_lightgbm(b) for b in bagged])
    mean = np.mean([b.predict(test) for b in bagged], axis=0)
    assert not np.allclose(bagged[0].predict(test), mean)
    np.testing.assert_allclose(averaged.predict(test), mean, rtol=0, atol=1e-12)
    weighted = combine_ensembles([from_lightgbm(b) for b in bagged[:2]], [0.5, -2.0])
    np.testing.assert_allclose(weighted.predict(test), 0.5 * bagged[0].predict(test) - 2.0 * bagged[1].predict(test),
                               rtol=0, atol=1e-12)


def test_trees_binary_form_is_exact_and_loads_fast_with_weights_only(tmp_path) -> None:
    import lightgbm
    import torch

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 5))
    booster = lightgbm.train({"objective": "l2", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(x, x[:, 0]), 30)
    trees = from_lightgbm(booster)
    torch.save({"trees": trees.to_dict(binary=True)}, tmp_path / "t.pt")
    again = TreeEnsemble.from_dict(torch.load(tmp_path / "t.pt", weights_only=True)["trees"])
    for field in ("feature", "threshold", "left", "right", "value", "roots"):
        np.testing.assert_array_equal(getattr(again, field), getattr(trees, field))
    np.testing.assert_allclose(again.predict(x), booster.predict(x), rtol=0, atol=1e-12)  # summation order
    with pytest.raises(ValueError, match="encoding"):
        TreeEnsemble.from_dict({**trees.to_dict(binary=True), "encoding": "big-endian"})
    truncated = trees.to_dict(binary=True)
    truncated["threshold_or_value"] = truncated["threshold_or_value"][:-8]
    with pytest.raises(ValueError, match="corrupt tree data"):
        TreeEnsemble.from_dict(truncated)
    shorter = trees.to_dict(binary=True)
    shorter["threshold_or_value"] = zlib.compress(np.zeros(3).tobytes())
    with pytest.raises(ValueError, match="one entry per node"):
        TreeEnsemble.from_dict(shorter)


def test_padded_complete_trees_predict_what_the_node_walker_predicts(monkeypatch) -> None:
    import lightgbm

    from gmt_ase.invariant import boosted_trees

    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 4))
    y = np.abs(x[:, 0]) + x[:, 1] * x[:, 2] + 0.1 * rng.normal(size=500)
    params = {"objective": "l2", "verbose": -1, "num_leaves": 9, "max_depth": 5}
    booster = lightgbm.train(params, lightgbm.Dataset(x, y), 60)
    trees = from_lightgbm(booster)
    assert trees._complete is not None and trees._complete.depth == 5  # padded: unbalanced trees, one depth
    np.testing.assert_allclose(trees.predict(x), trees._predict_walk(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(trees.predict(x), booster.predict(x), rtol=0, atol=1e-12)
    monkeypatch.setattr(boosted_trees, "_BLOCK_WALKERS", 7 * len(trees.roots))  # rows in blocks of 7
    np.testing.assert_allclose(trees.predict(x), booster.predict(x), rtol=0, atol=1e-12)
    # a chain of 12 splits is too deep to pad: the node walker answers, exactly
    depth = 12
    chain = {"n_features": 1, "roots": [0], "feature": [0] * depth + [-1] * (depth + 1),
             "threshold": [float(k) for k in range(depth)] + [0.0] * (depth + 1),
             "left": [depth + k for k in range(depth)] + [0] * (depth + 1),
             "right": list(range(1, depth)) + [2 * depth] + [0] * (depth + 1),
             "value": [0.0] * depth + [float(k) for k in range(depth + 1)]}
    deep = TreeEnsemble.from_dict(chain)
    assert deep._complete is None
    np.testing.assert_allclose(deep.predict(np.array([[-1.0], [0.5], [11.5], [99.0]])), [0.0, 1.0, 12.0, 12.0])
    assert trees.predict(np.zeros((0, 4))).shape == (0,)


def test_trees_refuse_bad_arrays_and_inputs() -> None:
    good = {"n_features": 2, "roots": [0], "feature": [0, -1, -1], "threshold": [0.5, 0, 0],
            "left": [1, 0, 0], "right": [2, 0, 0], "value": [0, -1.0, 1.0]}
    trees = TreeEnsemble.from_dict(good)
    np.testing.assert_allclose(trees.predict(np.array([[0.0, 9.0], [1.0, 9.0]])), [-1.0, 1.0])
    with pytest.raises(ValueError, match="out of range"):
        TreeEnsemble.from_dict({**good, "right": [7, 0, 0]})
    with pytest.raises(ValueError, match="feature"):
        TreeEnsemble.from_dict({**good, "feature": [5, -1, -1]})
    with pytest.raises(ValueError, match="finite"):
        trees.predict(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="cycle"):
        TreeEnsemble.from_dict({**good, "left": [0, 0, 0]}).predict(np.zeros((1, 2)))


def test_descriptors_are_invariant_to_rotation_order_translation_and_supercell(table: ElementTable) -> None:
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    reference = _descriptors(atoms, table)
    assert reference.shape == (len(DESCRIPTOR_NAMES),)
    assert np.all(np.isfinite(reference))
    rotated = transform_atoms(atoms, random_orthogonal(7, proper=False))
    shuffled = atoms[[3, 1, 0, 2]]
    shuffled.translate([0.3, -1.1, 0.7])
    supercell = atoms.repeat((2, 1, 1))
    for other in (rotated, shuffled, supercell):
        np.testing.assert_allclose(_descriptors(other, table), reference, rtol=1e-9, atol=1e-9)


def test_descriptors_tell_chemistry_and_compression_apart(table: ElementTable) -> None:
    si = _descriptors(bulk("Si", "diamond", a=5.43), table)
    squeezed = _descriptors(bulk("Si", "diamond", a=4.3), table)
    ge = _descriptors(bulk("Ge", "diamond", a=5.66), table)
    volume = DESCRIPTOR_NAMES.index("volume_per_atom")
    assert squeezed[volume] < si[volume]
    assert not np.allclose(si, ge)


def _graphite() -> Atoms:
    return Atoms(
        "C4", scaled_positions=[[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]],
        cell=[[2.46, 0, 0], [-1.23, 1.23 * np.sqrt(3), 0], [0, 0, 6.7]], pbc=True,
    )


@pytest.mark.parametrize(
    ("name", "atoms", "expected"),
    [  # textbook Steinhardt order parameters and bond-angle shares of ideal coordination shells
        ("diamond Si", bulk("Si", "diamond", a=5.43),
         {"steinhardt_q4_mean": 0.50918, "steinhardt_q6_mean": 0.62854, "bond_angle_cosine_mean": -1 / 3,
          "tetrahedral_angle_fraction": 1.0, "right_angle_fraction": 0.0}),
        ("rock-salt NaCl", bulk("NaCl", "rocksalt", a=5.64),
         {"steinhardt_q4_mean": 0.76376, "steinhardt_q6_mean": 0.35355, "right_angle_fraction": 0.8,
          "straight_angle_fraction": 0.2}),
        ("fcc Cu", bulk("Cu", "fcc", a=3.61), {"steinhardt_q4_mean": 0.19094, "steinhardt_q6_mean": 0.57452}),
    ],
)
def test_bond_angle_descriptors_match_ideal_coordination_shells(
    table: ElementTable, name: str, atoms: Atoms, expected: dict[str, float]
) -> None:
    values = _descriptors(atoms, table)
    for key, value in expected.items():
        assert values[DESCRIPTOR_NAMES.index(key)] == pytest.approx(value, abs=1e-4), (name, key)
    # cubic shells are isotropic
    assert values[DESCRIPTOR_NAMES.index("first_shell_orientation_anisotropy")] == pytest.approx(0.0, abs=1e-12)


def test_orientation_descriptors_see_layers_and_ionicity_sees_polar_bonds(table: ElementTable) -> None:
    graphite = _descriptors(_graphite(), table)
    assert graphite[DESCRIPTOR_NAMES.index("first_shell_orientation_min_eigenvalue")] == pytest.approx(0.0, abs=1e-9)
    assert graphite[DESCRIPTOR_NAMES.index("first_shell_orientation_anisotropy")] == pytest.approx(0.5, abs=1e-9)
    ionicity = DESCRIPTOR_NAMES.index("bond_ionicity_mean")
    assert _descriptors(bulk("Si", "diamond", a=5.43), table)[ionicity] == 0.0
    assert _descriptors(bulk("NaCl", "rocksalt", a=5.64), table)[ionicity] > 0.5


def test_element_table_round_trip_and_refusals(table: ElementTable) -> None:
    again = ElementTable.from_dict(table.to_dict())
    np.testing.assert_array_equal(again.values, table.values)
    with pytest.raises(ValueError, match="do not match"):
        ElementTable.from_dict({**table.to_dict(), "names": ["Z"]})


def _constant_model(table: ElementTable, values: dict[str, float], weight: float = 0.0) -> InvariantModel:
    """An invariant model whose trees predict fixed values (one leaf each)."""
    targets = {}
    for name, value in values.items():
        leaf = {"n_features": len(DESCRIPTOR_NAMES), "roots": [0], "feature": [-1], "threshold": [0.0],
                "left": [0], "right": [0], "value": [float(np.log(value - INVARIANTS[name]))]}
        targets[name] = InvariantTarget(TreeEnsemble.from_dict(leaf), weight, 0.1)
    return InvariantModel(table=table, cutoff=5.0, targets=targets)


def test_invariant_model_apply_hits_every_invariant_and_keeps_symmetry(table: ElementTable) -> None:
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    ops = analyze_symmetry(atoms).operations
    rng = np.random.default_rng(1)
    tensors = {
        "dielectric_electronic": reynolds_projection(np.eye(3) * 4 + 0.3 * rng.normal(size=(3, 3)), ops, rank=2),
        "dielectric_ionic": reynolds_projection(np.eye(3) * 2 + 0.1 * rng.normal(size=(3, 3)), ops, rank=2),
        "piezoelectric": reynolds_projection(rng.normal(size=(3, 3, 3)), ops, rank=3),
        "elastic": reynolds_projection(_stiffness(8), ops, rank=4),
    }
    for name in ("dielectric_electronic", "dielectric_ionic"):
        tensors[name] = (tensors[name] + tensors[name].T) / 2
    wanted = {"k_vrh": 150.0, "g_vrh": 50.0, "eps_electronic_mean": 3.7, "eps_total_mean": 9.0, "piezo_norm": 1.2}
    model = InvariantModel.from_dict(_constant_model(table, wanted).to_dict())
    (predicted,) = model.predict(np.zeros((1, len(DESCRIPTOR_NAMES))), [network_invariants(tensors)])
    assert predicted == pytest.approx(wanted, rel=1e-12)
    out = model.apply(tensors, predicted)
    assert network_invariants(out) == pytest.approx(wanted, rel=1e-10)
    for name, rank in (("dielectric_electronic", 2), ("piezoelectric", 3), ("elastic", 4)):
        np.testing.assert_allclose(reynolds_projection(out[name], ops, rank=rank), out[name], atol=1e-10)
    assert piezo_norm(out["piezoelectric"]) == pytest.approx(1.2)


def test_invariant_model_blends_with_the_network_in_log_space(table: ElementTable) -> None:
    model = _constant_model(table, {"k_vrh": 100.0}, weight=0.5)
    (predicted,) = model.predict(np.zeros((1, len(DESCRIPTOR_NAMES))), [{"k_vrh": 400.0}])
    assert predicted["k_vrh"] == pytest.approx(200.0)  # geometric mean


def test_invariant_model_refuses_other_descriptors(table: ElementTable) -> None:
    data = _constant_model(table, {"k_vrh": 100.0}).to_dict()
    with pytest.raises(ValueError, match="does not compute"):
        InvariantModel.from_dict({**data, "descriptor_names": ["volume_per_atom", "band_gap"]})
    with pytest.raises(ValueError, match="expects"):
        InvariantModel.from_dict({**data, "descriptor_names": ["volume_per_atom"]})
    with pytest.raises(ValueError, match="unknown invariants"):
        InvariantModel(table=table, cutoff=5.0, targets={"bandgap": next(iter(
            InvariantModel.from_dict(data).targets.values()))})


def test_invariant_model_trained_on_fewer_descriptors_reads_its_own_columns(table: ElementTable) -> None:
    """Models name their descriptors, so those trained before descriptors were added keep working."""
    names = ("density", "volume_per_atom")  # a subset, in another order than DESCRIPTOR_NAMES
    split = {"n_features": 2, "roots": [0], "feature": [1, -1, -1], "threshold": [20.0, 0.0, 0.0],
             "left": [1, 0, 0], "right": [2, 0, 0], "value": [0.0, np.log(300.0), np.log(100.0)]}
    target = InvariantTarget(TreeEnsemble.from_dict(split), 0.0, 0.1)
    model = InvariantModel.from_dict(
        InvariantModel(table=table, cutoff=5.0, targets={"k_vrh": target}, descriptor_names=names).to_dict()
    )
    dense, sparse = bulk("C", "diamond", a=3.57), bulk("K", "bcc", a=5.2)  # 5.7 vs 70 A^3 per atom
    graphs = [SimpleNamespace(numbers=a.numbers, edge_index=e, edge_vec=v, operations=range(48))
              for a in (dense, sparse) for e, v in [neighbor_list(a.positions, a.cell[:], 5.0)]]
    features = model.descriptors(graphs, [dense.cell[:], sparse.cell[:]])
    assert features.shape == (2, 2)
    predicted = model.predict(features, [{"k_vrh": float("nan")}] * 2)  # no network value: trees only
    assert [p["k_vrh"] for p in predicted] == pytest.approx([300.0, 100.0])


def test_uncertainty_is_zero_exactly_where_symmetry_forbids_and_has_the_calibrated_norm() -> None:
    from gmt_ase.invariant.uncertainty import allowed_components, prediction_uncertainty, validate_calibration

    calibration = validate_calibration({
        "log_sigma": dict.fromkeys(INVARIANTS, 0.2),
        "relative_sigma": {"dielectric_electronic": 0.1, "dielectric_ionic": 0.5, "piezoelectric": 0.8,
                           "elastic": 0.3},
    })
    zno = analyze_symmetry(bulk("ZnO", "wurtzite", a=3.25, c=5.21)).operations
    nacl = analyze_symmetry(bulk("NaCl", "rocksalt", a=5.64)).operations
    stiffness = reynolds_projection(_stiffness(9), zno, rank=4)
    piezo = reynolds_projection(np.random.default_rng(2).normal(size=(3, 3, 3)), zno, rank=3)
    tensors = {"dielectric_electronic": np.diag([4.0, 4.0, 4.5]), "dielectric_ionic": np.diag([5.0, 5.0, 6.0]),
               "piezoelectric": piezo, "elastic": stiffness}
    sigma = prediction_uncertainty(tensors, network_invariants(tensors), 1.0, zno, calibration)
    assert np.linalg.norm(sigma["elastic"]) == pytest.approx(0.3 * np.linalg.norm(stiffness))
    assert np.all(sigma["elastic"][~allowed_components(zno, 4)] == 0)
    assert sigma["dielectric_electronic"][0, 1] == 0 and sigma["dielectric_electronic"][2, 2] > 0
    assert sigma["k_vrh"] == pytest.approx(0.2 * vrh_moduli(stiffness)[0])
    assert sigma["eps_electronic_mean"] == pytest.approx(0.2 * (dielectric_mean(tensors["dielectric_electronic"]) - 1))
    # 6mm allows 3 independent piezo constants in 7 non-zero entries of e_ijk; m-3m allows none
    assert allowed_components(zno, 3).sum() == 7
    assert not allowed_components(nacl, 3).any()
    # a batch of groups of different orders, zero-padded with weights, gives each group's own masks
    padded = np.zeros((2, 48, 3, 3))
    padded[0, : len(zno)], padded[1] = zno, nacl
    weights = np.zeros((2, 48))
    weights[0, : len(zno)], weights[1] = 1.0, 1.0
    for rank in (2, 3, 4):
        batched = allowed_components(padded, rank, weights)
        assert np.array_equal(batched[0], allowed_components(zno, rank))
        assert np.array_equal(batched[1], allowed_components(nacl, rank))
    masks = {rank: allowed_components(zno, rank) for rank in (2, 3, 4)}
    given = prediction_uncertainty(tensors, network_invariants(tensors), 1.0, zno, calibration, masks)
    assert all(np.array_equal(given[name], sigma[name]) for name in ("elastic", "piezoelectric"))
    with pytest.raises(ValueError, match="lacks"):
        validate_calibration({"log_sigma": {}, "relative_sigma": {}})
