"""The target registry: which tensors gmt_ase predicts, their shapes, symmetries, units and conversions.

Conventions (see DESIGN.md section 2):

* Voigt order is pymatgen's and ASE's: 1=xx 2=yy 3=zz 4=yz 5=xz 6=xy.
* Stiffness ``C_IJ`` and piezoelectric stress coefficients ``e_iJ`` carry no Voigt factors.
* VASP, JARVIS and GMTNet store shear columns as xy yz zx; :func:`vasp_to_voigt` reorders them.
* Mandel notation scales shear entries by sqrt(2) so that the 6x6 matrix transforms orthogonally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "MANDEL_WEIGHTS",
    "MODEL_TARGETS",
    "TARGETS",
    "TargetSpec",
    "VOIGT_PAIRS",
    "VASP_TO_VOIGT_COLUMNS",
    "full_to_voigt",
    "voigt_to_full",
    "vasp_to_voigt",
    "mandel_from_voigt",
    "voigt_from_mandel",
    "mandel_from_full",
    "full_from_mandel",
    "EV_PER_A3_TO_GPA",
    "E_PER_A2_TO_C_PER_M2",
]

#: (i, j) Cartesian index pair of each Voigt index 0..5 (pymatgen order xx yy zz yz xz xy).
VOIGT_PAIRS: Final[tuple[tuple[int, int], ...]] = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
#: Column permutation taking VASP/JARVIS order (xx yy zz xy yz zx) to pymatgen order.
VASP_TO_VOIGT_COLUMNS: Final[tuple[int, ...]] = (0, 1, 2, 4, 5, 3)
EV_PER_A3_TO_GPA: Final[float] = 160.21766208
E_PER_A2_TO_C_PER_M2: Final[float] = 16.021766208

#: Mandel factor of each Voigt index (sqrt2 on shear): ``mandel_I = MANDEL_WEIGHTS[I] * voigt_I`` for a
#: symmetric matrix, so the 6x6 Mandel form of a stiffness rotates orthogonally. Read-only; the one copy.
MANDEL_WEIGHTS: Final[np.ndarray] = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])
MANDEL_WEIGHTS.setflags(write=False)


@dataclass(frozen=True)
class TargetSpec:
    """Description of one predicted tensor.

    Attributes
    ----------
    name
        Key used in model outputs, datasets and checkpoints.
    rank
        Rank of the Cartesian tensor (2, 3 or 4).
    index_symmetry
        Index-permutation symmetry in e3nn ``CartesianTensor`` notation.
    irreps
        O(3) irreducible representations spanned by the tensor.
    unit
        Physical unit of the Cartesian tensor.
    voigt_shape
        Shape of the Voigt form.
    predicted
        True for the tensors the network outputs (:data:`MODEL_TARGETS`); False for those derived from
        them (``dielectric_total`` = electronic + ionic).
    """

    name: str
    rank: int
    index_symmetry: str
    irreps: str
    unit: str
    voigt_shape: tuple[int, ...]
    predicted: bool = True

    @property
    def shape(self) -> tuple[int, ...]:
        """Cartesian shape, ``(3,) * rank``."""
        return (3,) * self.rank


TARGETS: Final[dict[str, TargetSpec]] = {
    spec.name: spec
    for spec in (
        TargetSpec("dielectric_electronic", 2, "ij=ji", "0e+2e", "1", (3, 3)),
        TargetSpec("dielectric_ionic", 2, "ij=ji", "0e+2e", "1", (3, 3)),
        TargetSpec("dielectric_total", 2, "ij=ji", "0e+2e", "1", (3, 3), predicted=False),
        TargetSpec("piezoelectric", 3, "ijk=ikj", "2x1o+2o+3o", "C/m^2", (3, 6)),
        TargetSpec("elastic", 4, "ijkl=jikl=klij", "2x0e+2x2e+4e", "GPa", (6, 6)),
    )
}
#: The tensors the network predicts, in checkpoint order (a checkpoint's ``targets`` list).
MODEL_TARGETS: Final[tuple[str, ...]] = tuple(name for name, spec in TARGETS.items() if spec.predicted)


def _as_array(tensor: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    array = np.asarray(tensor, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {array.shape}")
    return array


def full_to_voigt(tensor: np.ndarray) -> np.ndarray:
    """Convert a full Cartesian tensor to Voigt form without factors.

    Rank 2 (symmetric) becomes a (3, 3) matrix unchanged, rank 3 ``e_ijk`` becomes ``e_iJ`` (3, 6)
    and rank 4 ``C_ijkl`` becomes ``C_IJ`` (6, 6). The minor-symmetric partners are averaged, so a
    slightly asymmetric input maps to the Voigt form of its symmetric part.

    Parameters
    ----------
    tensor
        Cartesian tensor of shape (3, 3), (3, 3, 3) or (3, 3, 3, 3).

    Returns
    -------
    numpy.ndarray
        The Voigt form.
    """
    t = np.asarray(tensor, dtype=float)
    if t.shape == (3, 3):
        return 0.5 * (t + t.T)
    if t.shape == (3, 3, 3):
        sym = 0.5 * (t + t.transpose(0, 2, 1))
        return np.stack([sym[:, i, j] for i, j in VOIGT_PAIRS], axis=1)
    if t.shape == (3, 3, 3, 3):
        sym = 0.25 * (t + t.transpose(1, 0, 2, 3) + t.transpose(0, 1, 3, 2) + t.transpose(1, 0, 3, 2))
        return np.array([[sym[i, j, k, l] for k, l in VOIGT_PAIRS] for i, j in VOIGT_PAIRS])
    raise ValueError(f"expected a Cartesian tensor of rank 2, 3 or 4, got shape {t.shape}")


def voigt_to_full(voigt: np.ndarray) -> np.ndarray:
    """Convert a Voigt tensor without factors back to its full Cartesian form.

    Parameters
    ----------
    voigt
        (3, 3) symmetric matrix, (3, 6) piezoelectric ``e_iJ`` or (6, 6) stiffness ``C_IJ``.

    Returns
    -------
    numpy.ndarray
        Full tensor of shape (3, 3), (3, 3, 3) or (3, 3, 3, 3).
    """
    v = np.asarray(voigt, dtype=float)
    if v.shape == (3, 3):
        return v.copy()
    if v.shape == (3, 6):
        full = np.empty((3, 3, 3))
        for big_j, (j, k) in enumerate(VOIGT_PAIRS):
            full[:, j, k] = full[:, k, j] = v[:, big_j]
        return full
    if v.shape == (6, 6):
        full = np.empty((3, 3, 3, 3))
        for big_i, (i, j) in enumerate(VOIGT_PAIRS):
            for big_j, (k, l) in enumerate(VOIGT_PAIRS):
                value = v[big_i, big_j]
                for a, b in ((i, j), (j, i)):
                    full[a, b, k, l] = full[a, b, l, k] = value
        return full
    raise ValueError(f"expected a Voigt tensor of shape (3, 3), (3, 6) or (6, 6), got {v.shape}")


def vasp_to_voigt(matrix: np.ndarray) -> np.ndarray:
    """Reorder VASP/JARVIS columns (xx yy zz xy yz zx) into pymatgen Voigt order.

    A (3, 6) piezoelectric matrix has its columns permuted; a (6, 6) stiffness matrix has both rows
    and columns permuted.
    """
    m = np.asarray(matrix, dtype=float)
    cols = list(VASP_TO_VOIGT_COLUMNS)
    if m.shape == (3, 6):
        return m[:, cols]
    if m.shape == (6, 6):
        return m[np.ix_(cols, cols)]
    raise ValueError(f"expected a (3, 6) or (6, 6) VASP-order matrix, got {m.shape}")


def mandel_from_voigt(voigt: np.ndarray) -> np.ndarray:
    """Scale a (6, 6) stiffness or (3, 6) piezo Voigt matrix into Mandel form."""
    v = np.asarray(voigt, dtype=float)
    if v.shape == (6, 6):
        return v * np.outer(MANDEL_WEIGHTS, MANDEL_WEIGHTS)
    if v.shape == (3, 6):
        return v * MANDEL_WEIGHTS[None, :]
    raise ValueError(f"expected a (6, 6) or (3, 6) Voigt matrix, got {v.shape}")


def voigt_from_mandel(mandel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`mandel_from_voigt`."""
    m = np.asarray(mandel, dtype=float)
    if m.shape == (6, 6):
        return m / np.outer(MANDEL_WEIGHTS, MANDEL_WEIGHTS)
    if m.shape == (3, 6):
        return m / MANDEL_WEIGHTS[None, :]
    raise ValueError(f"expected a (6, 6) or (3, 6) Mandel matrix, got {m.shape}")


def mandel_from_full(tensor: np.ndarray) -> np.ndarray:
    """Mandel (6, 6) matrix of a full stiffness tensor; it rotates as ``Q M Q^T`` with Q orthogonal."""
    return mandel_from_voigt(full_to_voigt(_as_array(tensor, (3, 3, 3, 3), "stiffness")))


def full_from_mandel(mandel: np.ndarray) -> np.ndarray:
    """Full stiffness tensor from its Mandel (6, 6) matrix."""
    return voigt_to_full(voigt_from_mandel(_as_array(mandel, (6, 6), "Mandel matrix")))
