"""Shared helpers for gmt_ase's tests (and for users testing their own models or wrappers).

Nothing here is imported by the package itself. Every random helper takes an explicit seed or a seeded
:class:`numpy.random.Generator`, so a test draws the same matrices on every run and every machine
(never seed with ``hash(...)``: string hashing is salted per process; use :func:`stable_seed`).

* :func:`random_orthogonal`, :func:`stable_seed`: deterministic Haar-random rotations and rotoreflections;
* :func:`rotate_tensor`, :func:`transform_atoms`: act with an orthogonal matrix on a Cartesian tensor of
  any rank and on a crystal, written independently of :mod:`gmt_ase.core.symmetry`;
* :func:`assert_equivariant`: check that a structure -> tensors function commutes with O(3), in the
  spirit of e3nn's ``e3nn.util.test.assert_equivariant``;
* :func:`tiny_checkpoint`: the tiny, seeded, untrained checkpoint the test suite shares.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "assert_equivariant",
    "random_orthogonal",
    "rotate_tensor",
    "stable_seed",
    "tiny_checkpoint",
    "transform_atoms",
]


def stable_seed(*parts: Any) -> int:
    """Return a 32-bit seed from the ``repr`` of ``parts``, the same in every process (CRC-32)."""
    return zlib.crc32(repr(parts).encode())


def random_orthogonal(seed: int | np.random.Generator, proper: bool = True) -> np.ndarray:
    """Draw a Haar-random 3x3 rotation (``proper``, det +1) or rotoreflection (det -1).

    Parameters
    ----------
    seed
        An integer seed or a seeded :class:`numpy.random.Generator` (which is advanced).
    proper
        True for a rotation, False for a rotation times the inversion.

    Returns
    -------
    numpy.ndarray
        (3, 3) orthogonal matrix with the requested determinant.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # Haar measure on O(3) (Mezzadri 2007)
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] = -q[:, 0]
    return q


def rotate_tensor(tensor: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Apply the 3x3 matrix ``q`` to every index of a Cartesian tensor of any rank.

    ``T'_{ab...} = q_ai q_bj ... T_{ij...}``; every axis of ``tensor`` must have length 3.
    """
    out = np.asarray(tensor, dtype=float)
    if any(n != 3 for n in out.shape):
        raise ValueError(f"expected a Cartesian tensor of shape (3,)*rank, got {out.shape}")
    for axis in range(out.ndim):
        out = np.moveaxis(np.tensordot(q, out, axes=([1], [axis])), 0, axis)
    return out


def transform_atoms(atoms: Atoms, q: np.ndarray) -> Atoms:
    """Return a copy of the crystal with cell and positions mapped by ``q`` (each vector v becomes q v)."""
    moved = atoms.copy()
    moved.set_cell(np.asarray(atoms.cell[:]) @ q.T, scale_atoms=False)
    moved.positions = atoms.positions @ q.T
    return moved


def assert_equivariant(
    function: Callable[[Atoms], Mapping[str, np.ndarray]],
    atoms: Atoms,
    transforms: Iterable[np.ndarray],
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> float:
    """Assert ``function(q . atoms)[k] == q . function(atoms)[k]`` for every output and transform.

    Parameters
    ----------
    function
        Maps a crystal to a dict of full Cartesian tensors (any ranks; scalars count as rank 0).
    atoms
        The crystal.
    transforms
        Orthogonal 3x3 matrices to test with (e.g. from :func:`random_orthogonal`, proper and improper).
    rtol, atol
        Allowed Frobenius error: ``||f(q.x) - q.f(x)|| <= rtol * ||q.f(x)|| + atol``.

    Returns
    -------
    float
        The largest relative error seen (for reporting).

    Raises
    ------
    AssertionError
        Naming the output and the transform that failed.
    """
    reference = {key: np.asarray(value, dtype=float) for key, value in function(atoms).items()}
    worst = 0.0
    for n, q in enumerate(transforms):
        moved = function(transform_atoms(atoms, q))
        for key, value in reference.items():
            expected = rotate_tensor(value, q)
            error = float(np.linalg.norm(np.asarray(moved[key], dtype=float) - expected))
            scale = float(np.linalg.norm(expected))
            worst = max(worst, error / scale if scale > 0 else error)
            if error > rtol * scale + atol:
                raise AssertionError(
                    f"{key} is not equivariant under transform {n} (det {np.linalg.det(q):+.0f}): "
                    f"error {error:.3g} > {rtol:g} * {scale:.3g} + {atol:g}"
                )
    return worst


def tiny_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write the tiny, seeded, **untrained** test checkpoint (elements 1-94) to ``path`` and return it.

    The same bytes for the same seed; loads in milliseconds. Use the test suite's session fixture
    ``tiny_model`` rather than building it per module.
    """
    from gmt_ase.inference.io import make_test_checkpoint

    return make_test_checkpoint(path, seed=seed)
