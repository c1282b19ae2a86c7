"""Calibrated one-sigma uncertainties of a prediction, from the invariant model's validation errors.

Two error sources are modelled, each calibrated on the validation split (:mod:`gmt_ase.training.calibration`):

- the scale of a tensor (its invariant: K_VRH, G_VRH, the dielectric means, the piezo norm): a
  log-normal error whose sigma is the invariant's calibrated ``log_sigma``; the one-sigma of the value
  ``v`` (offset ``o``: 1 for dielectric means) is ``(v - o) * log_sigma``;
- the whole tensor: a relative Frobenius error ``relative_sigma`` spread evenly over the components
  the crystal's point group allows. Components that symmetry forbids are exactly zero and have zero
  uncertainty; the others get ``relative_sigma * ||T||_F / sqrt(n_allowed)``, so that the Frobenius
  norm of the one-sigma tensor is the expected Frobenius error.

Calibration data is plain numbers stored in the checkpoint under ``"uncertainty"``::

    {"log_sigma": {"k_vrh": .., "g_vrh": .., "eps_electronic_mean": .., "eps_total_mean": ..,
                   "piezo_norm": ..},
     "relative_sigma": {"dielectric_electronic": .., "dielectric_ionic": .., "piezoelectric": ..,
                        "elastic": ..},
     "coverage_95_factor": 1.96}

NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.invariant.invariant_model import INVARIANTS

__all__ = ["TENSOR_NAMES", "allowed_components", "prediction_uncertainty", "validate_calibration"]

TENSOR_NAMES = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")


def _generic_probes() -> dict[int, np.ndarray]:
    """Draw generic tensors with each target's index symmetry (fixed seed: reproducible)."""
    rng = np.random.default_rng(20241201)
    a, b, c = rng.normal(size=(3, 3)), rng.normal(size=(3, 3, 3)), rng.normal(size=(3, 3, 3, 3))
    c = c + c.transpose(1, 0, 2, 3)
    c = c + c.transpose(0, 1, 3, 2)
    return {2: a + a.T, 3: b + b.transpose(0, 2, 1), 4: c + c.transpose(2, 3, 0, 1)}


#: Generic tensors whose projections reveal the components a point group allows.
_PROBES = _generic_probes()


def validate_calibration(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """Check calibration data (see the module docstring) and return it as plain floats."""
    log_sigma = {k: float(v) for k, v in calibration["log_sigma"].items()}
    relative = {k: float(v) for k, v in calibration["relative_sigma"].items()}
    missing = (set(INVARIANTS) - set(log_sigma)) | (set(TENSOR_NAMES) - set(relative))
    if missing:
        raise ValueError(f"uncertainty calibration lacks {sorted(missing)}")
    if not all(np.isfinite(v) and v > 0 for v in (*log_sigma.values(), *relative.values())):
        raise ValueError("uncertainty calibration values must be finite and positive")
    return {"log_sigma": log_sigma, "relative_sigma": relative}


def allowed_components(operations: np.ndarray, rank: int) -> np.ndarray:
    """Boolean mask of the Cartesian components a point group allows to be non-zero."""
    projected = reynolds_projection(_PROBES[rank], np.asarray(operations, dtype=np.float64), rank=rank)
    return np.abs(projected) > 1e-9


def _tensor_sigma(tensor: np.ndarray, relative: float, operations: np.ndarray) -> np.ndarray:
    mask = allowed_components(operations, tensor.ndim)
    n_allowed = int(mask.sum())
    if n_allowed == 0:
        return np.zeros_like(tensor)
    return np.where(mask, relative * np.linalg.norm(tensor) / np.sqrt(n_allowed), 0.0)


def prediction_uncertainty(
    tensors: Mapping[str, np.ndarray],
    invariants: Mapping[str, float],
    eij_max: float,
    operations: np.ndarray,
    calibration: Mapping[str, Any],
) -> dict[str, Any]:
    """One-sigma uncertainties of one crystal's final tensors and invariants.

    Parameters
    ----------
    tensors
        Final Cartesian tensors (:data:`TENSOR_NAMES`).
    invariants
        Their invariants (:func:`gmt_ase.invariant.invariant_model.network_invariants` of ``tensors``).
    eij_max
        Maximum longitudinal piezo coefficient of ``tensors``, C/m^2.
    operations
        The crystal's point-group operations.
    calibration
        Validated calibration data (:func:`validate_calibration`).

    Returns
    -------
    dict
        Cartesian one-sigma arrays under the tensor names, and one-sigma scalars ``k_vrh``, ``g_vrh``,
        ``eps_electronic_mean``, ``eps_total_mean``, ``piezo_norm`` and ``eij_max``.
    """
    log_sigma, relative = calibration["log_sigma"], calibration["relative_sigma"]
    out: dict[str, Any] = {
        name: _tensor_sigma(np.asarray(tensors[name], dtype=np.float64), relative[name], operations)
        for name in TENSOR_NAMES
    }
    for name, offset in INVARIANTS.items():
        out[name] = float(max(invariants[name] - offset, 0.0) * log_sigma[name])
    out["eij_max"] = float(eij_max * log_sigma["piezo_norm"])
    return out
