"""The shared test helpers of :mod:`gmt_ase.testing` must themselves be right (and able to fail)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from ase.build import bulk

from gmt_ase.testing import assert_equivariant, random_orthogonal, rotate_tensor, stable_seed, transform_atoms


def test_random_orthogonal_is_seeded_and_has_the_requested_determinant():
    for seed in range(5):
        for proper in (True, False):
            q = random_orthogonal(seed, proper)
            np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-14)
            assert np.linalg.det(q) == pytest.approx(1.0 if proper else -1.0)
            np.testing.assert_array_equal(q, random_orthogonal(np.random.default_rng(seed), proper))
    assert not np.allclose(random_orthogonal(0), random_orthogonal(1))


def test_stable_seed_is_the_same_in_another_process():
    code = "from gmt_ase.testing import stable_seed; print(stable_seed('alpha_quartz', -1))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == stable_seed("alpha_quartz", -1) != stable_seed("alpha_quartz", 1)


def test_rotate_tensor_matches_explicit_products():
    rng = np.random.default_rng(0)
    q = random_orthogonal(rng, proper=False)
    v, m, t, c = (rng.normal(size=(3,) * r) for r in (1, 2, 3, 4))
    np.testing.assert_allclose(rotate_tensor(v, q), q @ v, atol=1e-14)
    np.testing.assert_allclose(rotate_tensor(m, q), q @ m @ q.T, atol=1e-14)
    np.testing.assert_allclose(rotate_tensor(t, q), np.einsum("ai,bj,ck,ijk->abc", q, q, q, t), atol=1e-14)
    np.testing.assert_allclose(
        rotate_tensor(c, q), np.einsum("ai,bj,ck,dl,ijkl->abcd", q, q, q, q, c), atol=1e-13
    )
    with pytest.raises(ValueError, match="shape"):
        rotate_tensor(np.zeros((3, 6)), q)


def test_assert_equivariant_passes_for_equivariant_and_fails_for_broken_functions():
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    qs = [random_orthogonal(s, proper=s % 2 == 0) for s in range(4)]

    def inertia(a):  # an equivariant rank-2 output and an invariant scalar
        r = a.positions - a.positions.mean(0)
        return {"inertia": r.T @ r, "volume": np.array(a.get_volume())}

    assert assert_equivariant(inertia, atoms, qs) < 1e-12
    moved = transform_atoms(atoms, qs[1])
    np.testing.assert_allclose(moved.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)
    with pytest.raises(AssertionError, match="diagonal"):  # the diagonal alone is frame-dependent
        assert_equivariant(lambda a: {"diagonal": np.diag(np.diag(inertia(a)["inertia"]))}, atoms, qs)
