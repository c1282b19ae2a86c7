"""Tests of the target registry and the Voigt / Mandel / VASP conversions in :mod:`gmt_ase.core.tensors`."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.analysis.piezo import PiezoTensor
from pymatgen.core.tensors import Tensor

from gmt_ase.core.tensors import (
    E_PER_A2_TO_C_PER_M2,
    EV_PER_A3_TO_GPA,
    TARGETS,
    VOIGT_PAIRS,
    full_from_mandel,
    full_to_voigt,
    mandel_from_full,
    mandel_from_voigt,
    vasp_to_voigt,
    voigt_from_mandel,
    voigt_to_full,
)
from gmt_ase.testing import random_orthogonal, rotate_tensor

#: index permutations that leave each rank's target invariant
PERMUTATIONS = {
    2: [(1, 0)],
    3: [(0, 2, 1)],
    4: [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)],
}


def random_symmetric(rank: int, seed: int = 0) -> np.ndarray:
    """A random tensor with the index symmetry of the rank's target (eps, e, C)."""
    t = np.random.default_rng(seed).normal(size=(3,) * rank)
    group = {tuple(range(rank))}
    while True:  # close the generators into the full permutation group
        new = {tuple(p[i] for i in g) for p in group for g in PERMUTATIONS[rank]} | group
        if new == group:
            break
        group = new
    return np.mean([t.transpose(p) for p in group], axis=0)


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------
def test_registry_shapes_and_units():
    assert set(TARGETS) == {
        "dielectric_electronic",
        "dielectric_ionic",
        "dielectric_total",
        "piezoelectric",
        "elastic",
    }
    expected = {2: ((3, 3), "1"), 3: ((3, 6), "C/m^2"), 4: ((6, 6), "GPa")}
    for spec in TARGETS.values():
        assert spec.shape == (3,) * spec.rank
        assert (spec.voigt_shape, spec.unit) == expected[spec.rank]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_registry_irreps_match_the_index_symmetry(name):
    o3 = pytest.importorskip("e3nn.o3")
    cartesian = pytest.importorskip("e3nn.io").CartesianTensor
    spec = TARGETS[name]
    assert o3.Irreps(spec.irreps).simplify() == cartesian(spec.index_symmetry).simplify()
    assert o3.Irreps(spec.irreps).dim == {2: 6, 3: 18, 4: 21}[spec.rank]


def test_unit_constants():
    ase_units = pytest.importorskip("ase.units")
    assert EV_PER_A3_TO_GPA == pytest.approx(1.0 / ase_units.GPa, rel=1e-8)
    assert E_PER_A2_TO_C_PER_M2 == pytest.approx(ase_units._e / 1e-20, rel=1e-8)


# --------------------------------------------------------------------------------------------------
# Voigt
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank, voigt_shape", [(2, (3, 3)), (3, (3, 6)), (4, (6, 6))])
def test_voigt_round_trips(rank, voigt_shape):
    full = random_symmetric(rank)
    voigt = full_to_voigt(full)
    assert voigt.shape == voigt_shape
    np.testing.assert_allclose(voigt_to_full(voigt), full, atol=1e-14)
    np.testing.assert_allclose(full_to_voigt(voigt_to_full(voigt)), voigt, atol=1e-14)


def test_voigt_to_full_has_the_index_symmetries():
    for rank, shape in [(3, (3, 6)), (4, (6, 6))]:
        voigt = np.random.default_rng(rank).normal(size=shape)
        if rank == 4:
            voigt = voigt + voigt.T
        full = voigt_to_full(voigt)
        for perm in PERMUTATIONS[rank]:
            np.testing.assert_array_equal(full.transpose(perm), full)


def test_voigt_order_is_xx_yy_zz_yz_xz_xy():
    assert VOIGT_PAIRS == ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
    e = np.zeros((3, 3, 3))
    e[2, 1, 2] = e[2, 2, 1] = 0.7  # e_z,yz -> e_34
    e[0, 0, 1] = e[0, 1, 0] = -0.2  # e_x,xy -> e_16
    expected = np.zeros((3, 6))
    expected[2, 3], expected[0, 5] = 0.7, -0.2
    np.testing.assert_array_equal(full_to_voigt(e), expected)


def test_full_to_voigt_keeps_only_the_symmetric_part():
    t = np.random.default_rng(3).normal(size=(3, 3, 3, 3))
    sym = 0.25 * (t + t.transpose(1, 0, 2, 3) + t.transpose(0, 1, 3, 2) + t.transpose(1, 0, 3, 2))
    np.testing.assert_allclose(full_to_voigt(t), full_to_voigt(sym), atol=1e-14)
    e = np.random.default_rng(4).normal(size=(3, 3, 3))
    np.testing.assert_allclose(full_to_voigt(e), full_to_voigt(0.5 * (e + e.transpose(0, 2, 1))), atol=1e-14)


def test_voigt_agrees_with_pymatgen():
    c_full = random_symmetric(4, seed=5)
    e_full = random_symmetric(3, seed=6)
    c_voigt, e_voigt = full_to_voigt(c_full), full_to_voigt(e_full)
    np.testing.assert_allclose(voigt_to_full(c_voigt), ElasticTensor.from_voigt(c_voigt), atol=1e-14)
    np.testing.assert_allclose(voigt_to_full(c_voigt), Tensor.from_voigt(c_voigt), atol=1e-14)
    np.testing.assert_allclose(voigt_to_full(e_voigt), PiezoTensor.from_voigt(e_voigt), atol=1e-14)
    np.testing.assert_allclose(voigt_to_full(e_voigt), Tensor.from_voigt(e_voigt), atol=1e-14)
    np.testing.assert_allclose(c_voigt, Tensor(c_full).voigt, atol=1e-14)
    np.testing.assert_allclose(e_voigt, Tensor(e_full).voigt, atol=1e-14)


@pytest.mark.parametrize(
    "convert, shape",
    [
        (full_to_voigt, (6,)),
        (full_to_voigt, (3, 3, 3, 3, 3)),
        (voigt_to_full, (6, 3)),
        (voigt_to_full, (3, 4)),
        (vasp_to_voigt, (3, 3)),
        (mandel_from_voigt, (3, 3)),
        (mandel_from_full, (6, 6)),
        (full_from_mandel, (3, 6)),
    ],
)
def test_bad_shapes_are_rejected(convert, shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))):  # the message names the bad shape
        convert(np.zeros(shape))


# --------------------------------------------------------------------------------------------------
# VASP / JARVIS order (xx yy zz xy yz zx)
# --------------------------------------------------------------------------------------------------
VASP_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (2, 0))


def test_vasp_to_voigt_on_a_hand_built_stiffness():
    vasp = np.diag([11.0, 22.0, 33.0, 66.0, 44.0, 55.0])  # C_xyxy, C_yzyz, C_zxzx in VASP slots 4-6
    vasp[0, 3] = vasp[3, 0] = 16.0  # xx-xy coupling
    vasp[1, 4] = vasp[4, 1] = 24.0  # yy-yz coupling
    expected = np.diag([11.0, 22.0, 33.0, 44.0, 55.0, 66.0])
    expected[0, 5] = expected[5, 0] = 16.0
    expected[1, 3] = expected[3, 1] = 24.0
    np.testing.assert_array_equal(vasp_to_voigt(vasp), expected)


def test_vasp_to_voigt_on_a_hand_built_piezo_matrix():
    vasp = np.array([[0.0, 0, 0, 0.1, 0.2, 0.3], [0, 0, 0, 0, 0, 0], [-0.5, -0.5, 1.2, 0, 0, 0]])
    expected = np.array([[0.0, 0, 0, 0.2, 0.3, 0.1], [0, 0, 0, 0, 0, 0], [-0.5, -0.5, 1.2, 0, 0, 0]])
    np.testing.assert_array_equal(vasp_to_voigt(vasp), expected)


@pytest.mark.parametrize("rank", [3, 4])
def test_vasp_to_voigt_matches_the_vasp_index_pairs(rank):
    full = random_symmetric(rank, seed=9)
    if rank == 3:
        vasp = np.array([[full[i, j, k] for j, k in VASP_PAIRS] for i in range(3)])
    else:
        vasp = np.array([[full[i, j, k, l] for k, l in VASP_PAIRS] for i, j in VASP_PAIRS])
    np.testing.assert_allclose(vasp_to_voigt(vasp), full_to_voigt(full), atol=1e-15)


# --------------------------------------------------------------------------------------------------
# Mandel
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [3, 4])
def test_mandel_preserves_the_frobenius_norm(rank):
    full = random_symmetric(rank, seed=10)
    mandel = mandel_from_voigt(full_to_voigt(full))
    assert np.linalg.norm(mandel) == pytest.approx(np.linalg.norm(full), rel=1e-13)
    assert np.linalg.norm(full_to_voigt(full)) != pytest.approx(np.linalg.norm(full), rel=1e-3)
    np.testing.assert_allclose(voigt_from_mandel(mandel), full_to_voigt(full), atol=1e-14)


def test_mandel_round_trip_of_a_stiffness_tensor():
    c_full = random_symmetric(4, seed=11)
    np.testing.assert_allclose(full_from_mandel(mandel_from_full(c_full)), c_full, atol=1e-14)


def test_mandel_matrix_rotates_orthogonally():
    c_full = random_symmetric(4, seed=12)
    q = random_orthogonal(13)
    c_rot = rotate_tensor(c_full, q)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(mandel_from_full(c_rot)), np.linalg.eigvalsh(mandel_from_full(c_full)), atol=1e-12
    )
    # plain Voigt eigenvalues are not frame invariant
    voigt_eigs = np.linalg.eigvalsh(full_to_voigt(c_full)), np.linalg.eigvalsh(full_to_voigt(c_rot))
    assert np.abs(voigt_eigs[0] - voigt_eigs[1]).max() > 1e-2
    # the 6x6 map M -> M' is an orthogonal similarity: build it from the rotated Mandel basis
    basis = np.zeros((6, 3, 3))
    for n, (i, j) in enumerate(VOIGT_PAIRS):
        basis[n, i, j] = basis[n, j, i] = 1.0 if i == j else np.sqrt(0.5)
    k = np.einsum("mij,ia,jb,nab->mn", basis, q, q, basis)  # (6, 6)
    np.testing.assert_allclose(k @ k.T, np.eye(6), atol=1e-13)
    np.testing.assert_allclose(mandel_from_full(c_rot), k @ mandel_from_full(c_full) @ k.T, atol=1e-12)


# --------------------------------------------------------------------------------------------------
# Voigt factors in physics: piezoelectric strain coefficients d = e S
# --------------------------------------------------------------------------------------------------
def hexagonal_stiffness(c11: float, c12: float, c13: float, c33: float, c44: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[0, 0] = c[1, 1] = c11
    c[0, 1] = c[1, 0] = c12
    c[0, 2] = c[2, 0] = c[1, 2] = c[2, 1] = c13
    c[2, 2] = c33
    c[3, 3] = c[4, 4] = c44
    c[5, 5] = 0.5 * (c11 - c12)
    return c


# Wurtzite ZnO: stiffness (GPa) of Kobiakov, Solid State Commun. 35, 305 (1980); e31 = -0.51,
# e33 = 1.22, e15 = -0.45 C/m^2. These are the inputs of DESIGN.md's check (d33 = 10.7, d31 = -4.95 pC/N).
ZNO_C = hexagonal_stiffness(209.7, 121.1, 105.1, 210.9, 42.47)
ZNO_E = np.zeros((3, 6))
ZNO_E[2, :3] = [-0.51, -0.51, 1.22]
ZNO_E[0, 4] = ZNO_E[1, 3] = -0.45


def test_zno_piezo_strain_coefficients():
    d = 1000.0 * ZNO_E @ np.linalg.inv(ZNO_C)  # pC/N; inv(C_V) is S_V with its 2 and 4 factors
    assert d[2, 2] == pytest.approx(10.7, abs=0.05)
    assert d[2, 0] == pytest.approx(-4.95, abs=0.05)
    assert d[2, 1] == pytest.approx(d[2, 0], abs=1e-12)


def test_voigt_factors_agree_with_full_tensor_contraction():
    # d_ijk = e_ilm S_lmjk with the full compliance (inverse of C on symmetric 3x3 matrices); its Voigt
    # form carries a factor 2 on the shear columns. Checks the "C and e have no factors" convention.
    c_full, e_full = voigt_to_full(ZNO_C), voigt_to_full(ZNO_E)
    mandel_compliance = np.linalg.inv(mandel_from_full(c_full))
    s_full = full_from_mandel(mandel_compliance)
    d_full = np.einsum("ilm,lmjk->ijk", e_full, s_full)
    d_voigt = full_to_voigt(d_full) * np.array([1, 1, 1, 2, 2, 2])
    np.testing.assert_allclose(d_voigt, ZNO_E @ np.linalg.inv(ZNO_C), atol=1e-15)
    # pymatgen's compliance in Voigt form carries the same factors
    np.testing.assert_allclose(
        ElasticTensor.from_voigt(ZNO_C).compliance_tensor.voigt, np.linalg.inv(ZNO_C), rtol=1e-10
    )


def test_every_voigt_pair_is_listed_once():
    assert sorted(VOIGT_PAIRS) == sorted(set(itertools.combinations_with_replacement(range(3), 2)))
