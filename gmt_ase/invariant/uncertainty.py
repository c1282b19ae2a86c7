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
     "coverage_95_factor": 1.96,
     "crystal_spread": {...}}  # optional

With ``"crystal_spread"`` (:mod:`gmt_ase.invariant.spread`) the sigmas are per crystal:
:func:`scale_uncertainty` multiplies each invariant's one-sigma, and the tensors' that follow it
(:data:`TENSOR_INVARIANTS`), by the crystal's log-sigma over the global ``log_sigma``.

NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.spread import CrystalSpread

__all__ = [
    "TENSOR_INVARIANTS",
    "TENSOR_NAMES",
    "allowed_components",
    "prediction_uncertainty",
    "scale_uncertainty",
    "validate_calibration",
]

TENSOR_NAMES = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")
#: The invariants whose per-crystal spread scales each tensor's one-sigma (geometric mean of their ratios).
TENSOR_INVARIANTS = {
    "dielectric_electronic": ("eps_electronic_mean",),
    "dielectric_ionic": ("eps_total_mean",),
    "piezoelectric": ("piezo_norm",),
    "elastic": ("k_vrh", "g_vrh"),
}


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
    """Check calibration data (see the module docstring) and return it as plain floats.

    A ``"crystal_spread"`` entry is returned as a :class:`~gmt_ase.invariant.spread.CrystalSpread`.
    """
    log_sigma = {k: float(v) for k, v in calibration["log_sigma"].items()}
    relative = {k: float(v) for k, v in calibration["relative_sigma"].items()}
    missing = (set(INVARIANTS) - set(log_sigma)) | (set(TENSOR_NAMES) - set(relative))
    if missing:
        raise ValueError(f"uncertainty calibration lacks {sorted(missing)}")
    if not all(np.isfinite(v) and v > 0 for v in (*log_sigma.values(), *relative.values())):
        raise ValueError("uncertainty calibration values must be finite and positive")
    out: dict[str, Any] = {"log_sigma": log_sigma, "relative_sigma": relative}
    spread = calibration.get("crystal_spread")
    if spread is not None:
        out["crystal_spread"] = spread if isinstance(spread, CrystalSpread) else CrystalSpread.from_dict(spread)
    return out


def allowed_components(operations: np.ndarray, rank: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the Cartesian components a point group allows to be non-zero.

    ``operations`` is (G, 3, 3), or (B, G, 3, 3) zero-padded with (B, G) ``weights`` for a batch of crystals
    (see :func:`gmt_ase.core.symmetry.reynolds_projection`); the mask is then (B, 3, ..., 3).
    """
    projected = reynolds_projection(_PROBES[rank], np.asarray(operations, dtype=np.float64), weights, rank=rank)
    return np.abs(projected) > 1e-9


def _tensor_sigma(tensor: np.ndarray, relative: float, mask: np.ndarray) -> np.ndarray:
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
    masks: Mapping[int, np.ndarray] | None = None,
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
    masks
        The :func:`allowed_components` of ``operations`` by tensor rank, when the caller has them already
        (computed for a whole batch at once); found from ``operations`` otherwise.

    Returns
    -------
    dict
        Cartesian one-sigma arrays under the tensor names, and one-sigma scalars ``k_vrh``, ``g_vrh``,
        ``eps_electronic_mean``, ``eps_total_mean``, ``piezo_norm`` and ``eij_max``.
    """
    log_sigma, relative = calibration["log_sigma"], calibration["relative_sigma"]
    out: dict[str, Any] = {}
    for name in TENSOR_NAMES:
        tensor = np.asarray(tensors[name], dtype=np.float64)
        mask = masks[tensor.ndim] if masks is not None else allowed_components(operations, tensor.ndim)
        out[name] = _tensor_sigma(tensor, relative[name], mask)
    for name, offset in INVARIANTS.items():
        out[name] = float(max(invariants[name] - offset, 0.0) * log_sigma[name])
    out["eij_max"] = float(eij_max * log_sigma["piezo_norm"])
    return out


def scale_uncertainty(
    uncertainty: Mapping[str, Any], log_sigma: Mapping[str, float], crystal_log_sigma: Mapping[str, float]
) -> dict[str, Any]:
    """Rescale one crystal's :func:`prediction_uncertainty` to its own log-sigmas (instead of the global ones).

    Parameters
    ----------
    uncertainty
        The output of :func:`prediction_uncertainty` (global calibration).
    log_sigma
        The global ``log_sigma`` it used, per invariant.
    crystal_log_sigma
        The crystal's log-sigma per invariant (:meth:`gmt_ase.invariant.spread.CrystalSpread.log_sigmas`).
    """
    ratio = {name: float(crystal_log_sigma[name]) / float(log_sigma[name]) for name in INVARIANTS}
    out = dict(uncertainty)
    for name in INVARIANTS:
        out[name] = float(uncertainty[name]) * ratio[name]
    out["eij_max"] = float(uncertainty["eij_max"]) * ratio["piezo_norm"]
    for name, invariants in TENSOR_INVARIANTS.items():
        factor = float(np.exp(np.mean([np.log(ratio[i]) for i in invariants])))
        out[name] = np.asarray(uncertainty[name]) * factor
    return out
