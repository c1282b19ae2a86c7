"""The float64 bases of :mod:`gmt_ase.nn.cartesian` against e3nn's ``CartesianTensor`` and the target registry.

e3nn's ``CartesianTensor`` is an independent construction of the change of basis between irreps and
Cartesian tensors of a given index symmetry. Ours must span the same irreps in the same order, and map to
e3nn's by a matrix that, by Schur's lemma, only scales each irrep copy (and mixes copies of equal type):
anything else means a block of the wrong type, order or parity.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from e3nn.io import CartesianTensor

from gmt_ase.core.tensors import MANDEL_WEIGHTS, MODEL_TARGETS, TARGETS, mandel_from_full, voigt_to_full
from gmt_ase.evaluation.metrics import moduli_vrh
from gmt_ase.nn.cartesian import cartesian_basis, from_mandel, mandel_basis, to_mandel
from gmt_ase.nn.model import OUTPUT_KEYS
from gmt_ase.testing import random_orthogonal, rotate_tensor
from gmt_ase.training.losses import vrh_moduli


def _slices(irreps: o3.Irreps) -> list[tuple[o3.Irrep, slice]]:
    """One (irrep, rows) entry per irrep copy, in order."""
    out, start = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            out.append((ir, slice(start, start + ir.dim)))
            start += ir.dim
    return out


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_cartesian_basis_agrees_with_e3nn_cartesian_tensor(name):
    spec = TARGETS[name]
    ours = cartesian_basis(spec.rank).reshape(-1, 3**spec.rank).numpy()  # (dim, 3^rank) float64
    e3nn_tensor = CartesianTensor(spec.index_symmetry)
    theirs = e3nn_tensor.reduced_tensor_products().change_of_basis.reshape(-1, 3**spec.rank)
    theirs = theirs.to(torch.float64).numpy()  # (dim, 3^rank), float32 precision
    irreps = o3.Irreps(spec.irreps)
    assert ours.shape[0] == irreps.dim == theirs.shape[0]
    # ours = M theirs, with M found by least squares; the fit must be exact (same subspace) ...
    m = np.linalg.lstsq(theirs.T, ours.T, rcond=None)[0].T  # (dim, dim)
    np.testing.assert_allclose(m @ theirs, ours, atol=1e-5)
    assert abs(np.linalg.det(m)) > 1e-3
    # ... and equivariant: M maps each of our irrep copies onto e3nn's copies of the same type only,
    # as a multiple of the identity (Schur), so the head's irreps are read in the right order.
    for ir_a, rows in _slices(irreps):
        for ir_b, cols in _slices(e3nn_tensor):
            block = m[rows, cols]
            if ir_a != ir_b:
                np.testing.assert_allclose(block, 0.0, atol=1e-5, err_msg=f"{ir_a} <- {ir_b}")
            else:
                np.testing.assert_allclose(block, block[0, 0] * np.eye(ir_a.dim), atol=1e-5)


@pytest.mark.parametrize("rank", [2, 3, 4])
def test_cartesian_basis_blocks_rotate_with_wigner_d(rank):
    # A second, e3nn-free view of the same property: q acting on each basis tensor = D(q) mixing its block.
    spec = next(s for s in TARGETS.values() if s.rank == rank)
    basis = cartesian_basis(rank).numpy()
    q = random_orthogonal(3, proper=False)
    d = o3.Irreps(spec.irreps).D_from_matrix(torch.as_tensor(q)).numpy()  # (dim, dim)
    rotated = np.stack([rotate_tensor(b, q) for b in basis])
    # D_from_matrix goes through Euler angles and keeps only ~1e-7 even in float64 (DESIGN.md section 3).
    np.testing.assert_allclose(rotated, np.einsum("mk,m...->k...", d, basis), atol=1e-6)


def test_model_targets_come_from_the_registry():
    assert OUTPUT_KEYS == MODEL_TARGETS == tuple(n for n in TARGETS if n != "dielectric_total")
    assert not TARGETS["dielectric_total"].predicted


def test_mandel_weights_are_one_read_only_source():
    assert not MANDEL_WEIGHTS.flags.writeable
    with pytest.raises(ValueError):
        MANDEL_WEIGHTS[3] = 1.0


def test_torch_and_numpy_mandel_maps_agree():
    rng = np.random.default_rng(4)
    voigt = rng.normal(size=(6, 6))
    full = voigt_to_full(voigt + voigt.T)  # a stiffness-like tensor with all index symmetries
    basis = mandel_basis()
    torch_mandel = to_mandel(torch.as_tensor(full)[None], basis)[0].numpy()
    np.testing.assert_allclose(torch_mandel, mandel_from_full(full), atol=1e-12)
    np.testing.assert_allclose(from_mandel(torch.as_tensor(torch_mandel), basis).numpy(), full, atol=1e-12)
    gram = torch.einsum("mij,nij->mn", basis, basis)
    np.testing.assert_allclose(gram.numpy(), np.eye(6), atol=1e-15)  # orthonormal


def test_loss_moduli_use_the_same_mandel_weights_as_pymatgen_moduli():
    rng = np.random.default_rng(5)
    a = rng.normal(scale=0.2, size=(6, 6))
    log_mandel = torch.as_tensor(a + a.T)[None]  # (1, 6, 6) symmetric log-stiffness
    k, g = vrh_moduli(log_mandel, elastic_scale=100.0)
    mandel = 100.0 * torch.linalg.matrix_exp(log_mandel)[0].numpy()
    voigt = mandel / np.outer(MANDEL_WEIGHTS, MANDEL_WEIGHTS)
    k_ref, g_ref = moduli_vrh(voigt_to_full(voigt))
    assert float(k[0]) == pytest.approx(k_ref, rel=1e-10)
    assert float(g[0]) == pytest.approx(g_ref, rel=1e-10)
