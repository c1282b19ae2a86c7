"""The invariant layer is continuous: smooth descriptors and smooth (soft-split) trees."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, make_supercell

from gmt_ase.graph.neighbors import neighbor_list
from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import (
    DESCRIPTOR_NAMES,
    ElementTable,
    crystal_descriptors,
    element_table_from_pymatgen,
    smooth_step,
)
from gmt_ase.invariant.soft_trees import soft_predict


@pytest.fixture(scope="module")
def table() -> ElementTable:
    return element_table_from_pymatgen()


def _descriptors(atoms, table: ElementTable) -> np.ndarray:
    edge_index, edge_vec = neighbor_list(atoms.positions, atoms.cell[:], 5.0)
    return crystal_descriptors(atoms.numbers, atoms.cell[:], edge_index, edge_vec, table, 5.0)


def _random_trees(n_trees: int, depth: int, n_features: int, seed: int) -> TreeEnsemble:
    """Complete random trees in heap order (node arrays as TreeEnsemble stores them)."""
    rng = np.random.default_rng(seed)
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    for _ in range(n_trees):
        base = len(feature)
        roots.append(base)
        n_splits = 2**depth - 1
        for h in range(2 ** (depth + 1) - 1):
            if h < n_splits:
                feature.append(int(rng.integers(n_features)))
                threshold.append(float(rng.normal()))
                left.append(base + 2 * h + 1)
                right.append(base + 2 * h + 2)
                value.append(0.0)
            else:
                feature.append(-1)
                threshold.append(0.0)
                left.append(0)
                right.append(0)
                value.append(float(rng.normal()))
    return TreeEnsemble.from_dict({"feature": feature, "threshold": threshold, "left": left, "right": right,
                                   "value": value, "roots": roots, "n_features": n_features})


def test_smooth_step_is_a_c2_step() -> None:
    x = np.linspace(-0.5, 1.5, 2001)
    y = smooth_step(x)
    assert y[x <= 0].max() == 0.0 and y[x >= 1].min() == 1.0
    assert smooth_step(np.array([0.5]))[0] == pytest.approx(0.5)
    assert np.all(np.diff(y) >= 0)
    second = np.diff(y, 2) / (x[1] - x[0]) ** 2
    assert np.abs(np.diff(second)).max() < 1.0  # no jump in the second derivative (a C1 step jumps by ~60 here)


def test_soft_trees_equal_hard_trees_away_from_every_split() -> None:
    trees = _random_trees(40, 4, 3, seed=0)
    x = np.random.default_rng(1).normal(size=(200, 3))
    widths = np.full(3, 1e-9)
    assert np.allclose(soft_predict(trees, x, widths), trees.predict(x), atol=1e-12)


def test_soft_trees_are_continuous_where_hard_trees_jump() -> None:
    trees = _random_trees(1, 1, 1, seed=2)
    threshold = trees.threshold[trees.feature >= 0][0]
    x = (threshold + np.array([-1e-9, 1e-9]))[:, None]
    hard, soft = trees.predict(x), soft_predict(trees, x, np.array([0.1]))
    assert abs(hard[1] - hard[0]) > 1e-3  # the hard split jumps
    assert abs(soft[1] - soft[0]) < 1e-6
    leaves = trees.value[trees.feature < 0]
    assert soft[0] == pytest.approx(leaves.mean(), abs=1e-6)  # halfway at the threshold


def test_soft_trees_are_smooth_along_a_line() -> None:
    trees = _random_trees(30, 3, 2, seed=3)
    t = np.linspace(-2, 2, 4001)
    x = np.stack([t, 0.5 * t], axis=1)
    y = soft_predict(trees, x, np.full(2, 0.3))
    step = t[1] - t[0]
    assert np.abs(np.diff(y)).max() < 50 * step  # no jumps: bounded slope
    assert np.abs(np.diff(y, 2)).max() < 500 * step**2  # bounded curvature


def test_soft_trees_refuse_bad_widths() -> None:
    trees = _random_trees(2, 2, 2, seed=4)
    with pytest.raises(ValueError, match="widths"):
        soft_predict(trees, np.zeros((1, 2)), np.array([0.1, 0.0]))


def test_descriptors_use_no_symmetry_and_no_hard_counts() -> None:
    assert "n_point_group_operations" not in DESCRIPTOR_NAMES


@pytest.mark.parametrize("atoms", [bulk("MgO", "rocksalt", a=4.21), bulk("Si", "diamond", a=5.43),
                                   bulk("ZnO", "wurtzite", a=3.25, c=5.21)], ids=["MgO", "Si", "ZnO"])
def test_descriptors_are_continuous_under_rattles_and_strain(atoms, table: ElementTable) -> None:
    """A 1e-4 A rattle or a 1e-4 strain moves every descriptor by at most ~1e-3 of its scale."""
    atoms = make_supercell(atoms, 2 * np.eye(3, dtype=int))
    reference = _descriptors(atoms, table)
    scale = np.abs(reference) + 1.0
    rattled = atoms.copy()
    rattled.positions += np.random.default_rng(0).normal(scale=1e-4, size=rattled.positions.shape)
    strained = atoms.copy()
    strained.set_cell(atoms.cell[:] * 1.0001, scale_atoms=True)
    for other in (rattled, strained):
        change = np.abs(_descriptors(other, table) - reference) / scale
        worst = int(np.argmax(change))
        assert change[worst] < 1e-3, DESCRIPTOR_NAMES[worst]


def test_coordination_counts_fade_in_smoothly_at_the_cutoff(table: ElementTable) -> None:
    """Stretching a cell moves neighbours across the 5 A cutoff: the neighbour counts change smoothly."""
    column = DESCRIPTOR_NAMES.index("neighbours_within_cutoff_mean")
    values = [_descriptors(bulk("Cu", "fcc", a=a), table)[column] for a in np.linspace(3.5, 3.7, 81)]
    assert np.abs(np.diff(values)).max() < 0.5  # a hard count jumps by 6 or 12 neighbours at once


def _dense_soft_sum(trees: TreeEnsemble, x: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Oracle: every leaf of every tree weighted by the product of split probabilities along its path."""
    layout = trees.complete_layout
    total = np.zeros(len(x))
    for t in range(len(layout.feature)):
        reach = np.ones((len(x), 1))
        for level in range(layout.depth):
            nodes = np.arange(2**level - 1, 2 ** (level + 1) - 1)
            f, thr = layout.feature[t, nodes], layout.threshold[t, nodes]
            p = smooth_step(np.where(np.isinf(thr), 1.0, (thr - x[:, f]) / (2 * widths[f]) + 0.5))
            reach = np.stack([reach * p, reach * (1 - p)], axis=-1).reshape(len(x), -1)
        total += reach @ layout.leaf[t]
    return total


@pytest.mark.parametrize("widths", [[0.3, 0.8, 0.05], [5.0, 5.0, 5.0], [1e-9, 1e-9, 1e-9]])
def test_branching_walk_equals_the_dense_leaf_sum(widths: list[float]) -> None:
    """The walkers that branch only near thresholds give the full probability-weighted sum over all leaves:
    with some branching, with every walker branching at every level, and with none."""
    trees = _random_trees(25, 4, 3, seed=5)
    x = np.random.default_rng(6).normal(size=(40, 3))
    widths = np.array(widths)
    np.testing.assert_allclose(soft_predict(trees, x, widths), _dense_soft_sum(trees, x, widths), atol=1e-12)
