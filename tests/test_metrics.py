"""Exact values of the GMTNet metrics (:mod:`gmt_ase.evaluation.metrics`) on hand-made tensors."""

from __future__ import annotations

import numpy as np
import pytest

from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.evaluation.metrics import (
    ZERO_TOL,
    is_zero,
    kg_errors,
    moduli_vrh,
    piezo_errors,
    stored_array,
    symmetry_violations,
    tensor_errors,
)


def isotropic_voigt(k: float, g: float) -> np.ndarray:
    """Isotropic stiffness (6, 6) with bulk modulus k and shear modulus g."""
    lam = k - 2.0 * g / 3.0
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2.0 * g
    c[np.arange(3, 6), np.arange(3, 6)] = g
    return c


def test_tensor_errors_exact_values() -> None:
    true = [np.eye(3) * 4.0, np.eye(3) * 2.0, np.eye(3)]  # ||Y||_F = 4 sqrt3, 2 sqrt3, sqrt3
    # errors: 0.1 * ||Y||, 0.2 * ||Y||, 0.04 * ||Y|| (relative 0.1, 0.2, 0.04)
    pred = [true[0] * 1.1, true[1] * 0.8, true[2] * 1.04]
    m = tensor_errors(pred, true)
    s3 = np.sqrt(3.0)
    assert m["count"] == 3
    assert m["fnorm"] == pytest.approx((0.4 * s3 + 0.4 * s3 + 0.04 * s3) / 3)
    assert m["mae"] == pytest.approx((3 * 0.4 + 3 * 0.4 + 3 * 0.04) / 27)
    assert m["ewt25"] == pytest.approx(1.0)
    assert m["ewt10"] == pytest.approx(1 / 3)  # 0.1 is not < 0.10: strict inequality
    assert m["ewt5"] == pytest.approx(1 / 3)


def test_tensor_errors_stored_and_full_forms_agree() -> None:
    rng = np.random.default_rng(0)
    voigt_true = [rng.normal(size=(3, 6)) for _ in range(4)]
    voigt_pred = [v + rng.normal(scale=0.2, size=(3, 6)) for v in voigt_true]
    from_voigt = tensor_errors(voigt_pred, voigt_true)
    from_full = tensor_errors([voigt_to_full(v) for v in voigt_pred], [voigt_to_full(v) for v in voigt_true])
    assert from_full == pytest.approx(from_voigt)
    assert stored_array(voigt_to_full(voigt_true[0])) == pytest.approx(voigt_true[0])


def test_fnorm_is_on_voigt_arrays_not_full_tensors() -> None:
    # A shear error of 1 in C44 is one Voigt entry (norm 1) but four Cartesian entries (norm 2).
    true = isotropic_voigt(100.0, 50.0)
    pred = true.copy()
    pred[3, 3] += 1.0
    assert tensor_errors([pred], [true])["fnorm"] == pytest.approx(1.0)
    assert tensor_errors([voigt_to_full(pred)], [voigt_to_full(true)])["fnorm"] == pytest.approx(1.0)


def test_zero_target_convention() -> None:
    zero = np.zeros((3, 6))
    nonzero = np.ones((3, 6))
    m = tensor_errors([zero, np.full((3, 6), 1e-3), nonzero], [zero, zero, nonzero])
    assert m["ewt5"] == pytest.approx(2 / 3)  # exact zero prediction counts, 1e-3 does not
    assert m["fnorm"] == pytest.approx(np.sqrt(18) * 1e-3 / 3)
    below_tol = np.full((3, 6), ZERO_TOL / 10)
    assert tensor_errors([below_tol], [zero])["ewt5"] == 1.0
    assert is_zero([zero, below_tol, nonzero]).tolist() == [True, True, False]


def test_piezo_with_and_without_zeros() -> None:
    e = np.zeros((3, 6))
    e[2, 2] = 1.0  # ||Y|| = 1
    zero = np.zeros((3, 6))
    pred = [e * 1.5, zero, zero]  # relative error 0.5, then two exact zeros
    m = piezo_errors(pred, [e, zero, zero])
    assert m["n_zero"] == 2
    assert m["without_zeros"]["count"] == 1
    assert m["without_zeros"]["ewt25"] == 0.0
    assert m["without_zeros"]["fnorm"] == pytest.approx(0.5)
    assert m["with_zeros"]["count"] == 3
    assert m["with_zeros"]["ewt25"] == pytest.approx(2 / 3)
    assert m["with_zeros"]["fnorm"] == pytest.approx(0.5 / 3)


def test_empty_metrics_are_nan() -> None:
    m = tensor_errors([], [])
    assert m["count"] == 0
    assert np.isnan(m["fnorm"]) and np.isnan(m["ewt25"])
    assert kg_errors(np.zeros((0, 6, 6)), {"k_vrh": [], "g_vrh": []})["count"] == 0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        tensor_errors([np.eye(3)], [np.ones((3, 6))])
    with pytest.raises(ValueError, match="shape"):
        stored_array(np.ones((2, 2)))


def test_moduli_of_isotropic_tensor() -> None:
    k, g = moduli_vrh(isotropic_voigt(120.0, 45.0))
    assert k == pytest.approx(120.0)
    assert g == pytest.approx(45.0)
    assert moduli_vrh(voigt_to_full(isotropic_voigt(120.0, 45.0))) == pytest.approx((120.0, 45.0))


def test_kg_errors_from_tensors_and_from_scalars() -> None:
    pred = [isotropic_voigt(100.0, 40.0), isotropic_voigt(200.0, 90.0)]
    true = [isotropic_voigt(110.0, 40.0), isotropic_voigt(190.0, 80.0)]
    expected = {"count": 2, "k_vrh_mae": 10.0, "g_vrh_mae": 5.0}
    assert kg_errors(pred, true) == pytest.approx(expected)
    assert kg_errors(pred, {"k_vrh": [110.0, 190.0], "g_vrh": [40.0, 80.0]}) == pytest.approx(expected)
    assert kg_errors(pred, (np.array([110.0, 190.0]), np.array([40.0, 80.0]))) == pytest.approx(expected)
    with pytest.raises(ValueError, match="predictions"):
        kg_errors(pred, {"k_vrh": [1.0], "g_vrh": [1.0]})


def test_symmetry_violations_counts_broken_tensors() -> None:
    c4z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    group = np.array([np.linalg.matrix_power(c4z, n) for n in range(4)])  # point group 4
    uniaxial = np.diag([2.0, 2.0, 5.0])
    broken = np.diag([2.0, 2.0 + 1e-3, 5.0])
    tiny_noise = uniaxial + 1e-9 * np.diag([1.0, -1.0, 0.0])
    assert symmetry_violations([uniaxial, broken, tiny_noise], [group] * 3) == 1
    assert symmetry_violations([broken], [group], tol=1e-2) == 0
    stiff = isotropic_voigt(100.0, 30.0)
    stiff_broken = stiff.copy()
    stiff_broken[0, 0] += 1.0
    assert symmetry_violations([stiff, stiff_broken], [group, group]) == 1  # Voigt (6, 6) accepted
    with pytest.raises(ValueError, match="operations"):
        symmetry_violations([uniaxial], [])
