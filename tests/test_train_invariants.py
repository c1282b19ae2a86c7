"""Training the invariant model from cached features: descriptors left out stay out of the trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.training.train_invariants import train_invariant_model

EXCLUDED = ("nn_distance_mean", "nn_over_covalent_min")


def _cached_features(folder: Path, n: int = 90) -> None:
    """A small features cache in the format of ``train_invariants`` (it is read instead of the data)."""
    rng = np.random.default_rng(0)
    descriptors = rng.normal(size=(n, len(DESCRIPTOR_NAMES)))
    signal = descriptors[:, DESCRIPTOR_NAMES.index("nn_distance_mean")]  # only an excluded column carries it
    truth = np.column_stack([np.exp(4 + 0.3 * signal), np.exp(3 + 0.3 * signal), 3 + np.exp(signal),
                             5 + np.exp(signal), np.exp(signal)])
    np.savez_compressed(
        folder / "features.npz",
        descriptors=descriptors,
        descriptor_names=np.array(DESCRIPTOR_NAMES),
        network=truth * rng.uniform(0.8, 1.2, size=truth.shape),
        truth=truth,
        split=np.array(["train", "train", "val"] * (n // 3)),
        full_tensor=np.ones(n, dtype=bool),
        element_table=np.zeros((95, 18)),
        cutoff=np.array(5.0),
    )


def test_excluded_descriptors_are_not_read_by_the_trees(tmp_path: Path) -> None:
    _cached_features(tmp_path)
    model, metrics = train_invariant_model("unused.pt", tmp_path, tmp_path, exclude=EXCLUDED)
    assert set(model.descriptor_names) == set(DESCRIPTOR_NAMES) - set(EXCLUDED)
    assert set(metrics) == set(INVARIANTS)
    rows = np.random.default_rng(1).normal(size=(4, len(DESCRIPTOR_NAMES)))
    moved = rows.copy()
    moved[:, [DESCRIPTOR_NAMES.index(name) for name in EXCLUDED]] += 10.0  # changes nothing the trees read
    for target in model.targets.values():
        np.testing.assert_array_equal(model.tree_values(target, model.columns(rows)),
                                      model.tree_values(target, model.columns(moved)))


def test_unknown_descriptor_to_exclude_is_refused(tmp_path: Path) -> None:
    _cached_features(tmp_path)
    with pytest.raises(ValueError, match="unknown descriptors"):
        train_invariant_model("unused.pt", tmp_path, tmp_path, exclude=("no_such_descriptor",))
