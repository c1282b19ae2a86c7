"""Distance from centrosymmetry, the piezo onset built on it, and the near-centrosymmetric warning."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, make_supercell

from gmt_ase.evaluation.textbook import build_textbook, cubic_batio3
from gmt_ase.graph.pseudosymmetry import centrosymmetry_distance, near_centrosymmetric_warning
from gmt_ase.invariant.piezo_onset import ONSET_DISTANCE, onset_factor
from gmt_ase.testing import random_orthogonal, transform_atoms


def _distance(atoms) -> float:
    return centrosymmetry_distance(atoms.cell[:], atoms.positions, atoms.numbers)


@pytest.mark.parametrize("name", ["Si", "MgO", "CaF2", "rutile", "CsCl"])
def test_centrosymmetric_crystals_are_at_distance_zero(name: str) -> None:
    assert _distance(build_textbook(name)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ["ZnO", "GaAs", "quartz", "BaTiO3"])
def test_distance_is_invariant_to_how_the_crystal_is_written(name: str) -> None:
    atoms = build_textbook(name)
    reference = _distance(atoms)
    assert reference > 0.05
    moved = transform_atoms(atoms, random_orthogonal(3, proper=False))
    moved.translate([0.37, -1.2, 2.5])
    variants = [moved, atoms[np.random.default_rng(0).permutation(len(atoms))],
                make_supercell(atoms, [[1, 1, 0], [0, 1, 1], [1, 0, 1]]), make_supercell(atoms, np.diag([2, 1, 1]))]
    for variant in variants:
        assert _distance(variant) == pytest.approx(reference, rel=1e-9)


def test_distance_grows_linearly_with_a_polar_distortion() -> None:
    shifts = np.array([0.0, 0.005, 0.01, 0.02, 0.04])
    distances = np.array([_distance(cubic_batio3(s)) for s in shifts])
    assert distances[0] == pytest.approx(0.0, abs=1e-12)
    ratios = distances[1:] / shifts[1:]
    assert np.allclose(ratios, ratios[0], rtol=1e-6)  # exactly linear: one atom moves off the centre


def test_rattles_give_distances_of_the_rattle_size() -> None:
    atoms = make_supercell(bulk("MgO", "rocksalt", a=4.21), 2 * np.eye(3, dtype=int))
    for sigma in (0.005, 0.02):
        rattled = atoms.copy()
        rattled.positions += np.random.default_rng(1).normal(scale=sigma, size=rattled.positions.shape)
        assert 0.3 * sigma < _distance(rattled) < 2 * sigma


def test_onset_factor_vanishes_with_the_distance_and_saturates() -> None:
    assert onset_factor(0.0) == 0.0
    assert onset_factor(0.2 * ONSET_DISTANCE) < 0.01
    assert onset_factor(ONSET_DISTANCE) == pytest.approx(2**-0.5)
    assert onset_factor(3 * ONSET_DISTANCE) > 0.99
    assert onset_factor(float("inf")) == 1.0
    d = np.linspace(0, 0.3, 301)
    values = np.array([onset_factor(x) for x in d])
    assert np.all(np.diff(values) >= 0) and np.abs(np.diff(values, 2)).max() < 1e-2


def test_near_centrosymmetric_warning_reads_the_distance_from_centrosymmetry() -> None:
    shifted = cubic_batio3(0.05)
    near = centrosymmetry_distance(shifted.cell[:], shifted.positions, shifted.numbers)
    assert 0.0 < near < 0.1
    assert "centrosymmetric" in near_centrosymmetric_warning(near)
    zno = build_textbook("ZnO")
    assert near_centrosymmetric_warning(centrosymmetry_distance(zno.cell[:], zno.positions, zno.numbers)) is None
    assert near_centrosymmetric_warning(float("inf")) is None  # too large to measure: no claim


def test_predictions_warn_for_nearly_centrosymmetric_crystals_only() -> None:
    """Through the public API: the warning follows the piezo onset's distance, once per crystal."""
    from gmt_ase.predict import predict_tensors

    predictions = predict_tensors([cubic_batio3(0.05), build_textbook("ZnO")], model="fast", device="cpu")
    assert sum("centrosymmetric" in w for w in predictions[0].warnings) == 1
    assert not any("centrosymmetric" in w for w in predictions[1].warnings)
