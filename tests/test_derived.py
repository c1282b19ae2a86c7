"""Derived quantities against pymatgen, closed forms and the ZnO DFT reference (MP mp-2133)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gmt_ase.core.derived import (
    DERIVED_UNITS,
    derived_properties,
    elastic_moduli,
    longitudinal_piezo_max,
    piezo_strain_coefficients,
)
from gmt_ase.core.tensors import full_to_voigt, voigt_to_full
from gmt_ase.testing import rotate_tensor

# ZnO wurtzite, Materials Project mp-2133 (de Jong et al. 2015), IEEE frame.
ZNO_E = np.array([[0, 0, 0, 0, -0.385, 0], [0, 0, 0, -0.385, 0, 0], [-0.53751, -0.53751, 1.03681, 0, 0, 0]])
ZNO_C = np.array([
    [186.843, 110.668, 91.286, 0, 0, 0],
    [110.668, 185.647, 92.775, 0, 0, 0],
    [91.286, 92.775, 204.817, 0, 0, 0],
    [0, 0, 0, 37.182, 0, 0],
    [0, 0, 0, 0, 36.696, 0],
    [0, 0, 0, 0, 0, 40.410],
])


def isotropic_stiffness(lam: float, mu: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2 * mu
    c[np.arange(3, 6), np.arange(3, 6)] = mu
    return c


def test_zno_reference_values():
    d = derived_properties(np.eye(3) * 3.7, np.eye(3) * 4.6, ZNO_E, ZNO_C)
    assert d["k_vrh"] == pytest.approx(129.64, abs=0.01)  # MP: K_VRH 129.64 GPa
    assert d["g_vrh"] == pytest.approx(41.16, abs=0.01)  # MP: G_VRH 41.16 GPa
    assert d["universal_anisotropy"] == pytest.approx(0.1324, abs=1e-3)
    assert d["homogeneous_poisson"] == pytest.approx(0.3565, abs=1e-3)
    assert d["born_stable"] is True
    assert d["eij_max"] == pytest.approx(1.03681, abs=1e-6)  # along c, as in the dataset's v_max
    dm = np.array(d["piezo_strain_d"])
    assert dm.shape == (3, 6)
    assert dm[2, 2] == pytest.approx(9.27, abs=0.01)  # d33 pC/N
    assert dm[2, 0] == pytest.approx(-4.56, abs=0.01)  # d31
    assert dm[0, 4] == pytest.approx(1000 * -0.385 / 36.696, rel=1e-6)  # d15 = e15 / C44 (S55 = 1/C55)
    assert d["d_max_abs"] == pytest.approx(np.abs(dm).max())


def test_strain_coefficients_match_the_full_tensor_contraction():
    rng = np.random.default_rng(1)
    e = rng.normal(size=(3, 6))
    a = rng.normal(size=(6, 6))
    c = a @ a.T * 20 + np.eye(6) * 60
    s_full = np.linalg.pinv(voigt_to_full(c).reshape(9, 9)).reshape(3, 3, 3, 3)  # inverse on sym. strains
    d_full = np.einsum("ilm,lmjk->ijk", voigt_to_full(e), s_full)  # C/m^2 * 1/GPa = nC/N
    d_voigt = full_to_voigt(d_full) * np.array([1, 1, 1, 2, 2, 2])  # engineering shear
    np.testing.assert_allclose(piezo_strain_coefficients(e, c), 1000 * d_voigt, rtol=1e-8, atol=1e-10)


def test_isotropic_closed_forms():
    lam, mu = 60.0, 40.0
    out = elastic_moduli(isotropic_stiffness(lam, mu))
    assert out["k_vrh"] == pytest.approx(lam + 2 * mu / 3)
    assert out["g_vrh"] == pytest.approx(mu)
    assert out["universal_anisotropy"] == pytest.approx(0.0, abs=1e-12)
    assert out["homogeneous_poisson"] == pytest.approx(lam / (2 * (lam + mu)))
    assert out["born_stable"] is True


def test_born_instability_and_singular_stiffness():
    unstable = isotropic_stiffness(60.0, 40.0)
    unstable[3, 3] = -5.0
    assert elastic_moduli(unstable)["born_stable"] is False
    d = derived_properties(np.eye(3), np.zeros((3, 3)), ZNO_E, np.zeros((6, 6)))
    assert d["born_stable"] is False
    assert d["k_vrh"] is None and d["g_vrh"] is None
    assert d["piezo_strain_d"] is None and d["d_max_abs"] is None
    json.dumps(d, allow_nan=False)


def test_dielectric_summary_and_refractive_index():
    eps_el = np.diag([2.0, 3.0, 4.0])
    eps_ion = np.diag([1.0, 1.0, 4.0])
    d = derived_properties(eps_el, eps_ion, np.zeros((3, 6)), ZNO_C)
    assert d["eps_electronic_eigenvalues"] == pytest.approx([2.0, 3.0, 4.0])
    assert d["eps_electronic_mean"] == pytest.approx(3.0)
    assert d["eps_ionic_mean"] == pytest.approx(2.0)
    assert d["eps_total_eigenvalues"] == pytest.approx([3.0, 4.0, 8.0])
    assert d["eps_total_mean"] == pytest.approx(5.0)
    assert d["refractive_index"] == pytest.approx(np.sqrt(3.0))
    assert d["eij_max"] == 0.0
    bad = derived_properties(-np.eye(3), eps_ion, np.zeros((3, 6)), ZNO_C)
    assert bad["refractive_index"] is None


def test_longitudinal_maximum_against_brute_force_and_rotations():
    rng = np.random.default_rng(7)
    directions = rng.normal(size=(200_000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for _ in range(3):
        e = rng.normal(size=(3, 6))
        value, direction = longitudinal_piezo_max(e)
        full = voigt_to_full(e)
        brute = np.einsum("ijk,ni,nj,nk->n", full, directions, directions, directions).max()
        assert brute <= value + 1e-9
        assert value == pytest.approx(brute, abs=2e-3)
        assert np.einsum("ijk,i,j,k->", full, direction, direction, direction) == pytest.approx(value)
        q = Rotation.random(random_state=rng).as_matrix()
        rotated, _ = longitudinal_piezo_max(full_to_voigt(rotate_tensor(full, q)))
        assert rotated == pytest.approx(value, rel=1e-12)


def test_longitudinal_maximum_is_frame_independent_to_machine_precision():
    """Newton refinement on the sphere: the same maximum in any frame (the sampled one differs by ~0.1 %)."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        full = voigt_to_full(rng.normal(size=(3, 6)))
        value, direction = longitudinal_piezo_max(full_to_voigt(full))
        q = Rotation.random(random_state=rng).as_matrix() * rng.choice([-1.0, 1.0])  # rotations and inversions
        rotated, rotated_direction = longitudinal_piezo_max(full_to_voigt(rotate_tensor(full, q)))
        assert rotated == pytest.approx(value, rel=1e-12)
        assert np.einsum("ijk,i,j,k->", full, direction, direction, direction) == pytest.approx(value, rel=1e-12)
        sym = (full + full.transpose(1, 0, 2) + full.transpose(2, 1, 0)) / 3.0
        gradient = 3.0 * np.einsum("ijk,j,k->i", sym, direction, direction)
        tangential = gradient - (gradient @ direction) * direction
        assert np.linalg.norm(tangential) < 1e-9  # a stationary point on the sphere, i.e. converged


def test_keys_units_and_json_safety():
    d = derived_properties(np.eye(3) * 5, np.eye(3), ZNO_E, ZNO_C)
    assert list(d) == list(DERIVED_UNITS)
    assert DERIVED_UNITS["k_vrh"] == "GPa" and DERIVED_UNITS["piezo_strain_d"] == "pC/N"
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    assert all(type(x) is float for x in d["eps_total_eigenvalues"])
