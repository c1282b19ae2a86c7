"""Physics guarantees of the shipped models (issue 19): each test failed on version 5.

A prediction is a function of the crystal, not of how it is written, and a continuous, smooth one. The
full tables over all textbook crystals are ``benchmarks/physics_guarantees.py``; here a subset per guarantee.
Known misses of version 7, measured there and not tested here, are listed in benchmarks/README.md
("Physics guarantees").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.evaluation.guarantees import (
    STRAINS,
    invariance_checks,
    polar_distortion_series,
    pressure_derivative,
    rattle_checks,
    strain_series,
)
from gmt_ase.evaluation.textbook import build_textbook
from gmt_ase.predict import predict_tensors
from gmt_ase.training.data import load_records

DATA_DIR = Path(__file__).resolve().parents[1] / "data"

MODELS = ("default", "fast")


def _predictor(model: str):
    def predict(structures):
        return predict_tensors(structures, model=model, device="cpu", batch_size=64)

    return predict


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_same_crystal_written_differently_gets_the_same_answer(model: str) -> None:
    """Rotations, reflection, translation, atom order, supercells and cell choices: invariants to 1e-4."""
    result = invariance_checks(_predictor(model), names=("Si", "MgO", "ZnO", "quartz", "BaTiO3", "CaF2"))
    assert not result.failures, result.failures


@pytest.mark.slow
def test_three_hundred_data_crystals_rewritten_get_the_same_answer() -> None:
    """100 piezoelectric, 100 dielectric and 100 elastic crystals of the data, each rotated or reflected with
    shuffled, translated atoms and (up to 24 atoms) as a non-diagonal supercell: invariants to 1e-4, tensors
    rotated with the crystal (piezo prototypes, descriptors, spglib frames and neighbour lists all take part).
    """
    rng = np.random.default_rng(7)
    crystals = {}
    for source in ("piezoelectric", "dielectric", "elastic"):
        records = load_records(DATA_DIR, (source,))
        for i in rng.choice(len(records), 100, replace=False):
            crystals[f"{records[i].material_id} ({source})"] = AseAtomsAdaptor.get_atoms(records[i].structure)
    result = invariance_checks(_predictor("default"), names=(), structures=crystals)
    assert result.total >= 500
    assert not result.failures, result.failures


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_rattled_centrosymmetric_crystals_stay_centrosymmetric_and_stiff(model: str) -> None:
    """0.002-0.02 A rattles: |e| of the order of the distortion; up to 0.01 A K, G, eps means, spreads within 2 %."""
    result = rattle_checks(_predictor(model), names=("MgO", "NaCl", "Si", "CsCl", "CaF2", "Al"), seeds=2)
    assert not result.failures, result.failures


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hydrostatic", "uniaxial"])
def test_predictions_are_smooth_under_strain(mode: str) -> None:
    """-2..+2 % strain in 0.25 % steps: second differences at most 0.5 % of the value."""
    predict = _predictor("default")
    for name in ("Si", "MgO", "Al", "ZnO"):
        series = strain_series(predict, build_textbook(name), mode)
        for key, values in series.items():
            worst = np.max(np.abs(np.diff(values, 2)) / np.abs(values[1:-1]))
            assert worst <= 0.005, f"{name} {mode} {key}: {100 * worst:.2f} % over {STRAINS[0]}..{STRAINS[-1]}"


@pytest.mark.slow
def test_piezo_response_grows_from_zero_with_a_polar_distortion() -> None:
    """Ti off-centring in cubic BaTiO3: zero when centrosymmetric, small for tiny shifts, grows with the shift."""
    shifts = (0.0, 0.001, 0.005, 0.02, 0.05, 0.1)
    norms = polar_distortion_series(_predictor("default"), shifts)
    assert norms[0] == 0.0
    assert norms[1] < 0.05, norms
    assert norms[2] < 0.1, norms
    assert np.all(np.diff(norms) >= 0), norms  # grows with the distortion
    assert norms[-1] > 3 * norms[3], norms


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_bulk_modulus_stiffens_under_pressure_like_a_solid(model: str) -> None:
    """K' = dK/dP from the hydrostatic series is 3-6 (real crystals: about 4-5; version 6: 1-2)."""
    predict = _predictor(model)
    for name in ("Si", "NaCl", "Al"):
        k_prime = pressure_derivative(STRAINS, strain_series(predict, build_textbook(name), "hydrostatic")["k_vrh"])
        assert 3.0 <= k_prime <= 6.0, f"{name}: K' = {k_prime:.2f}"
