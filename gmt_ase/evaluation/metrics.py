"""Error metrics for predicted tensors, following GMTNet's protocol (DESIGN.md section 5). Pure NumPy.

Tensors are compared on their **stored arrays**: dielectric 3x3, piezoelectric 3x6 Voigt (C/m^2) and
elastic 6x6 Voigt (GPa), in pymatgen's Voigt order without factors. Full Cartesian tensors are converted
with :func:`gmt_ase.core.tensors.full_to_voigt` first, so either form may be passed.

* ``fnorm``: mean over samples of ``||Y - Yhat||_F``;
* ``ewt25``, ``ewt10``, ``ewt5``: share of samples with ``||Y - Yhat||_F / ||Y||_F`` below 0.25, 0.10, 0.05;
* ``mae``: mean absolute error over every entry of every stored array;
* ``count``: number of samples.

Zero targets (centrosymmetric piezoelectric tensors): the relative error of a zero tensor is undefined.
Convention: a sample whose true tensor has ``||Y||_F <= ZERO_TOL`` counts as within every EwT threshold if
and only if its prediction is also zero, ``||Yhat||_F <= ZERO_TOL`` (1e-10), and as outside otherwise. It
still contributes ``||Yhat||_F`` to ``fnorm``. Because symmetry-projected predictions of centrosymmetric
crystals are exact zeros, such samples inflate EwT: report piezoelectric metrics both with and without
them (:func:`piezo_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.core.tensors import full_to_voigt, voigt_to_full

__all__ = [
    "EWT_THRESHOLDS",
    "ZERO_TOL",
    "is_zero",
    "kg_errors",
    "moduli_vrh",
    "piezo_errors",
    "stored_array",
    "symmetry_violations",
    "tensor_errors",
]

#: EwT thresholds on the relative Frobenius error, keyed by the metric name.
EWT_THRESHOLDS: dict[str, float] = {"ewt25": 0.25, "ewt10": 0.10, "ewt5": 0.05}
#: Frobenius norm below which a tensor counts as zero.
ZERO_TOL = 1e-10


def stored_array(tensor: Any) -> np.ndarray:
    """Return the stored form of one tensor: 3x3 unchanged, rank 3 -> 3x6 Voigt, rank 4 -> 6x6 Voigt.

    Parameters
    ----------
    tensor
        Full Cartesian tensor (3, 3), (3, 3, 3), (3, 3, 3, 3), or an already stored (3, 6) / (6, 6) array.

    Returns
    -------
    numpy.ndarray
        float64 (3, 3), (3, 6) or (6, 6) array.

    """
    array = np.asarray(tensor, dtype=float)
    if array.shape in ((3, 3), (3, 6), (6, 6)):
        return array
    if array.shape in ((3, 3, 3), (3, 3, 3, 3)):
        return full_to_voigt(array)
    raise ValueError(f"expected a Cartesian tensor or a stored (3, 6)/(6, 6) array, got shape {array.shape}")


def _stack(tensors: Any) -> np.ndarray:
    """(N, a, b) stored arrays from a sequence (or array) of tensors; N may be 0."""
    items = [stored_array(t) for t in tensors]
    if not items:
        return np.zeros((0, 0, 0))
    shapes = {item.shape for item in items}
    if len(shapes) > 1:
        raise ValueError(f"tensors of different shapes in one metric: {sorted(shapes)}")
    return np.stack(items)


def is_zero(tensors: Any, tol: float = ZERO_TOL) -> np.ndarray:
    """Boolean mask (N,) of tensors whose Frobenius norm is at most ``tol``."""
    stacked = _stack(tensors)
    return np.linalg.norm(stacked.reshape(len(stacked), -1), axis=1) <= tol


def tensor_errors(pred: Any, true: Any) -> dict[str, float]:
    """GMTNet metrics of predicted against true tensors.

    Parameters
    ----------
    pred, true
        Sequences (or stacked arrays) of N tensors of one kind, full Cartesian or stored form.

    Returns
    -------
    dict
        ``count``, ``fnorm``, ``mae``, ``ewt25``, ``ewt10``, ``ewt5`` (EwT as fractions in [0, 1]); the
        metrics are NaN when ``count`` is 0. See the module docstring for zero targets.

    """
    y_hat, y = _stack(pred), _stack(true)
    if y_hat.shape != y.shape:
        raise ValueError(f"pred and true differ in shape: {y_hat.shape} vs {y.shape}")
    count = len(y)
    if count == 0:
        nan = float("nan")
        return {"count": 0, "fnorm": nan, "mae": nan, **dict.fromkeys(EWT_THRESHOLDS, nan)}
    err = np.linalg.norm((y - y_hat).reshape(count, -1), axis=1)  # (N,)
    norm = np.linalg.norm(y.reshape(count, -1), axis=1)  # (N,)
    zero = norm <= ZERO_TOL
    pred_zero = np.linalg.norm(y_hat.reshape(count, -1), axis=1) <= ZERO_TOL
    relative = np.where(zero, np.where(pred_zero, 0.0, np.inf), err / np.where(zero, 1.0, norm))
    metrics: dict[str, float] = {
        "count": count,
        "fnorm": float(err.mean()),
        "mae": float(np.abs(y - y_hat).mean()),
    }
    for name, threshold in EWT_THRESHOLDS.items():
        metrics[name] = float(np.mean(relative < threshold))
    return metrics


def piezo_errors(pred: Any, true: Any) -> dict[str, dict[str, float]]:
    """Piezoelectric metrics with and without zero (centrosymmetric) true tensors.

    Returns
    -------
    dict
        ``with_zeros``: :func:`tensor_errors` on every sample; ``without_zeros``: on the samples whose
        true tensor is not zero (``||Y||_F > ZERO_TOL``); ``n_zero``: number of zero targets.

    """
    pred_list, true_list = list(pred), list(true)
    if len(pred_list) != len(true_list):
        raise ValueError(f"{len(pred_list)} predictions for {len(true_list)} true tensors")
    keep = ~is_zero(true_list) if true_list else np.zeros(0, dtype=bool)
    kept = [(p, t) for p, t, k in zip(pred_list, true_list, keep, strict=True) if k]
    return {
        "with_zeros": tensor_errors(pred_list, true_list),
        "without_zeros": tensor_errors([p for p, _ in kept], [t for _, t in kept]),
        "n_zero": int((~keep).sum()),
    }


def moduli_vrh(stiffness: Any) -> tuple[float, float]:
    """Voigt-Reuss-Hill bulk and shear moduli (GPa) of one stiffness tensor, via pymatgen.

    Parameters
    ----------
    stiffness
        (6, 6) Voigt or (3, 3, 3, 3) Cartesian stiffness, GPa.

    """
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    tensor = ElasticTensor.from_voigt(stored_array(stiffness))
    return float(tensor.k_vrh), float(tensor.g_vrh)


def _kg_arrays(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(K, G) arrays from stiffness tensors, a ``{"k_vrh": ..., "g_vrh": ...}`` mapping or a (K, G) pair."""
    if isinstance(values, Mapping):
        values = (values["k_vrh"], values["g_vrh"])
    if isinstance(values, tuple) and len(values) == 2 and np.ndim(values[0]) <= 1:
        return np.asarray(values[0], dtype=float).ravel(), np.asarray(values[1], dtype=float).ravel()
    moduli = np.array([moduli_vrh(c) for c in values], dtype=float).reshape(-1, 2)
    return moduli[:, 0], moduli[:, 1]


def kg_errors(pred: Any, true: Any) -> dict[str, float]:
    """Mean absolute errors of the VRH bulk and shear moduli (GPa).

    Parameters
    ----------
    pred
        N predicted stiffness tensors, (6, 6) Voigt or (3, 3, 3, 3), GPa.
    true
        N true stiffness tensors, or the true moduli as a mapping ``{"k_vrh": (N,), "g_vrh": (N,)}`` or a
        tuple ``(k_vrh, g_vrh)`` of (N,) arrays.

    Returns
    -------
    dict
        ``count``, ``k_vrh_mae``, ``g_vrh_mae`` (NaN when ``count`` is 0).

    """
    k_pred, g_pred = _kg_arrays(pred)
    k_true, g_true = _kg_arrays(true)
    if k_pred.shape != k_true.shape:
        raise ValueError(f"{len(k_pred)} predictions for {len(k_true)} true values")
    if len(k_pred) == 0:
        return {"count": 0, "k_vrh_mae": float("nan"), "g_vrh_mae": float("nan")}
    return {
        "count": len(k_pred),
        "k_vrh_mae": float(np.abs(k_pred - k_true).mean()),
        "g_vrh_mae": float(np.abs(g_pred - g_true).mean()),
    }


def _cartesian(tensor: Any) -> np.ndarray:
    array = np.asarray(tensor, dtype=float)
    return voigt_to_full(array) if array.shape in ((3, 6), (6, 6)) else array


def symmetry_violations(tensors: Sequence[Any], operations: Sequence[Any], tol: float = 1e-6) -> int:
    """Count the tensors that break their crystal's point-group symmetry.

    Parameters
    ----------
    tensors
        N Cartesian tensors (rank 1-4; (3, 6) and (6, 6) Voigt arrays are expanded first).
    operations
        N arrays (G, 3, 3) of Cartesian point-group operations, one per tensor.
    tol
        Relative tolerance: a tensor violates its symmetry when
        ``||P(T) - T||_F > tol * max(1, ||T||_F)``, with ``P`` the Reynolds projection.

    Returns
    -------
    int
        The number of violating tensors.

    """
    if len(tensors) != len(operations):
        raise ValueError(f"{len(tensors)} tensors but {len(operations)} sets of operations")
    count = 0
    for tensor, ops in zip(tensors, operations, strict=True):
        t = _cartesian(tensor)
        residual = np.linalg.norm(reynolds_projection(t, np.asarray(ops, dtype=float)) - t)
        count += int(residual > tol * max(1.0, float(np.linalg.norm(t))))
    return count
