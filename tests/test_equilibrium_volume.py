"""The zero-pressure volume model and the equation of state of the elastic invariants (issue 19, K')."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest

from gmt_ase.evaluation.textbook import build_textbook
from gmt_ase.graph.crystal import prepare_crystal
from gmt_ase.graph.crystal_graph import crystal_graph
from gmt_ase.inference.cache import load_predictor
from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES, crystal_descriptors, element_table_from_pymatgen
from gmt_ase.invariant.equilibrium_volume import (
    ELASTIC_INVARIANTS,
    FEATURE_NAMES,
    SCALE_DEPENDENT,
    EquilibriumVolume,
    scale_free_features,
    scaled_to_volume,
)
from gmt_ase.invariant.invariant_model import network_invariants

CUTOFF = 5.0
CRYSTALS = ("Si", "NaCl", "ZnO", "Al", "quartz", "BaTiO3", "CaF2")


@pytest.fixture(scope="module")
def table():
    return element_table_from_pymatgen()


def _descriptors(atoms, table) -> np.ndarray:
    crystal, _ = prepare_crystal(atoms, cutoff=CUTOFF)
    graph = crystal_graph(crystal, CUTOFF)
    return crystal_descriptors(graph.numbers, crystal.cell, graph.edge_index, graph.edge_vec, table, CUTOFF)


def _scaled(atoms, factor: float):
    copy = atoms.copy()
    copy.set_cell(copy.cell * factor, scale_atoms=True)
    return copy


@pytest.mark.parametrize("name", CRYSTALS)
def test_scale_dependent_descriptors_are_exactly_those_that_change_under_uniform_scaling(name, table) -> None:
    """The list the volume model excludes is right: every other descriptor is scale-free, and these are not."""
    atoms = build_textbook(name)
    base, scaled = _descriptors(atoms, table), _descriptors(_scaled(atoms, 1.04), table)
    changed = {n for n, a, b in zip(DESCRIPTOR_NAMES, base, scaled, strict=True) if abs(a - b) > 1e-9 * (1 + abs(a))}
    assert changed <= SCALE_DEPENDENT, sorted(changed - SCALE_DEPENDENT)
    free, free_scaled = scale_free_features(base[None]), scale_free_features(scaled[None])
    np.testing.assert_allclose(free_scaled, free, rtol=1e-9, atol=1e-12)


def _toy_volume_model(pressure_derivative: float = 3.5) -> EquilibriumVolume:
    """Two stumps on the first two features: a smooth, non-constant V0 without training."""
    trees = TreeEnsemble(
        feature=np.array([0, -1, -1, 1, -1, -1]),
        threshold=np.array([30.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
        left=np.array([1, 0, 0, 4, 0, 0]),
        right=np.array([2, 0, 0, 5, 0, 0]),
        value=np.array([0.0, 0.1, 0.3, 0.0, -0.05, 0.05]),
        roots=np.array([0, 3]),
        n_features=len(FEATURE_NAMES),
    )
    return EquilibriumVolume(trees, np.ones(len(FEATURE_NAMES)), pressure_derivative)


def test_volume_model_round_trips_and_refuses_foreign_data() -> None:
    model = _toy_volume_model()
    features = np.random.default_rng(0).normal(size=(4, len(DESCRIPTOR_NAMES))) ** 2 + 0.5
    for binary in (False, True):
        again = EquilibriumVolume.from_dict(model.to_dict(binary))
        np.testing.assert_array_equal(again.log_volume_ratio(features), model.log_volume_ratio(features))
    data = model.to_dict()
    with pytest.raises(ValueError, match="other features"):
        EquilibriumVolume.from_dict({**data, "feature_names": data["feature_names"][:-1]})
    with pytest.raises(ValueError, match="format"):
        EquilibriumVolume.from_dict({**data, "format_version": 99})
    with pytest.raises(ValueError, match="physical K'"):
        _toy_volume_model(pressure_derivative=-1.0)


def test_zero_pressure_volume_is_the_same_for_compressed_and_expanded_copies(table) -> None:
    """V0 reads only scale-free features: scaling a crystal changes log(V0/V) by exactly -log(scale^3)."""
    model = _toy_volume_model()
    atoms = build_textbook("ZnO")
    base = model.log_volume_ratio(_descriptors(atoms, table)[None])[0]
    for factor in (0.98, 1.015):
        ratio = model.log_volume_ratio(_descriptors(_scaled(atoms, factor), table)[None])[0]
        assert ratio == pytest.approx(base - 3 * np.log(factor), abs=1e-9)


def test_scaled_to_volume_scales_the_volume_by_the_ratio() -> None:
    atoms = build_textbook("Si")
    positions, cell = scaled_to_volume(atoms.positions, atoms.cell[:], np.log(0.9))
    assert abs(np.linalg.det(cell)) == pytest.approx(0.9 * atoms.get_volume(), rel=1e-12)
    np.testing.assert_allclose(positions @ np.linalg.inv(cell), atoms.positions @ np.linalg.inv(atoms.cell[:]),
                               atol=1e-12)


@pytest.mark.parametrize("model", ["default", "fast"])
def test_shipped_tree_moduli_follow_murnaghan_under_hydrostatic_strain(model: str) -> None:
    """K(V) = K(V0) (V0/V)^K'0 exactly when K and G come from the trees alone (blend weight 0): compressing
    a crystal changes only the Murnaghan factor. (With the shipped blend, the network's own K adds its
    slope with weight 0.15: tests/test_physics_guarantees.py checks K' there.)"""
    shipped = load_predictor(model, "cpu")
    volume = shipped.equilibrium_volume
    assert volume is not None and 3.0 <= volume.pressure_derivative <= 6.0
    trees_only = copy.copy(shipped)  # the cached predictor itself stays as shipped
    targets = {name: replace(target, network_weight=0.0) if name in ELASTIC_INVARIANTS else target
               for name, target in shipped.invariant_model.targets.items()}
    trees_only.invariant_model = replace(shipped.invariant_model, targets=targets)
    factors = (0.99, 1.0, 1.01)
    crystals = [prepare_crystal(_scaled(build_textbook("MgO"), f), cutoff=shipped.cutoff)[0] for f in factors]
    results = trees_only.predict(crystals)
    moduli = np.array([[network_invariants(r)[name] for name in ELASTIC_INVARIANTS] for r in results])
    expected = np.array(factors) ** (-3 * volume.pressure_derivative)
    np.testing.assert_allclose(moduli / moduli[1], np.column_stack([expected, expected]), rtol=1e-6)
