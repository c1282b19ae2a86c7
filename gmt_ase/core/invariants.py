"""Rotation invariants of the predicted tensors, and rescaling a tensor to given invariants exactly.

A tensor splits into its invariants (bulk and shear moduli, dielectric means, piezo norm) and a shape.
The shipped model predicts the invariants with boosted trees on crystal descriptors
(:mod:`gmt_ase.invariant.invariant_model`) and the shape with the equivariant network; this module joins them.
Every rescaling is an isotropic operation, so it commutes with every rotation and keeps the point-group
symmetry (and positive definiteness) of the network's tensor exactly:

- elastic: the congruence ``C' = S C S`` with ``S = sqrt(a) P_J + sqrt(b) P_K`` in Mandel form, where
  ``P_J`` projects on hydrostatic strain and ``P_K = 1 - P_J`` on deviatoric strain. Voigt, Reuss and
  Hill bulk moduli all scale by ``a`` and shear moduli by ``b`` (``C'^-1 = S^-1 C^-1 S^-1``);
- dielectric: ``eps' = 1 + s (eps - 1)`` for the electronic part, ``s eps_ion`` for the ionic part;
- piezoelectric: ``e' = s e``.

NumPy only.
"""

from __future__ import annotations

import numpy as np

from gmt_ase.core.tensors import full_from_mandel, mandel_from_full

__all__ = [
    "INVARIANTS",
    "dielectric_mean",
    "piezo_norm",
    "rescale_dielectric",
    "rescale_elastic",
    "vrh_moduli",
]

#: The rotation invariants a model predicts, with the offset below which each cannot go (its log-normal
#: distribution is of ``value - offset``): moduli in GPa, dielectric means (vacuum: 1), the piezo norm of
#: the full tensor in C/m^2.
INVARIANTS: dict[str, float] = {
    "k_vrh": 0.0,
    "g_vrh": 0.0,
    "eps_electronic_mean": 1.0,
    "eps_total_mean": 1.0,
    "piezo_norm": 0.0,
}
_HYDROSTATIC = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]) / np.sqrt(3.0)
#: Mandel-form projector on hydrostatic strain (isotropic: commutes with every rotation).
P_BULK = np.outer(_HYDROSTATIC, _HYDROSTATIC)
#: Mandel-form projector on deviatoric strain.
P_SHEAR = np.eye(6) - P_BULK


def vrh_moduli(stiffness: np.ndarray) -> tuple[float, float]:
    """Voigt-Reuss-Hill bulk and shear moduli of a (3, 3, 3, 3) stiffness tensor (same units).

    Written in Mandel form: ``K_V = v.C.v / 3``, ``K_R = 1 / (3 v.S.v)``, ``G_V = tr(P_K C) / 10``,
    ``G_R = 5 / (2 tr(P_K S))`` with ``S = C^-1`` (equal to pymatgen's ``k_vrh``/``g_vrh``; tested).
    A singular stiffness has no Reuss bound; its moduli are NaN.
    """
    mandel = mandel_from_full(np.asarray(stiffness, dtype=np.float64))
    try:
        compliance = np.linalg.inv(mandel)
    except np.linalg.LinAlgError:
        return float("nan"), float("nan")
    k_voigt = _HYDROSTATIC @ mandel @ _HYDROSTATIC / 3.0
    k_reuss = 1.0 / (3.0 * _HYDROSTATIC @ compliance @ _HYDROSTATIC)
    g_voigt = np.trace(P_SHEAR @ mandel) / 10.0
    g_reuss = 2.5 / np.trace(P_SHEAR @ compliance)
    return float((k_voigt + k_reuss) / 2.0), float((g_voigt + g_reuss) / 2.0)


def rescale_elastic(stiffness: np.ndarray, bulk_factor: float, shear_factor: float) -> np.ndarray:
    """Scale a stiffness tensor's bulk moduli by ``bulk_factor`` and shear moduli by ``shear_factor``.

    Both factors must be positive; the result keeps the tensor's symmetry and positive definiteness.
    """
    if not (bulk_factor > 0 and shear_factor > 0):
        raise ValueError(f"scale factors must be positive, got {bulk_factor} and {shear_factor}")
    scale = np.sqrt(bulk_factor) * P_BULK + np.sqrt(shear_factor) * P_SHEAR
    return full_from_mandel(scale @ mandel_from_full(np.asarray(stiffness, dtype=np.float64)) @ scale)


def dielectric_mean(tensor: np.ndarray) -> float:
    """Mean eigenvalue (a third of the trace) of a 3x3 dielectric tensor."""
    return float(np.trace(np.asarray(tensor, dtype=np.float64)) / 3.0)


def rescale_dielectric(tensor: np.ndarray, factor: float, vacuum: float) -> np.ndarray:
    """Return ``vacuum * 1 + factor * (tensor - vacuum * 1)``: 1 for eps_inf's susceptibility, 0 for ionic."""
    if not factor >= 0:
        raise ValueError(f"scale factor must be non-negative, got {factor}")
    identity = vacuum * np.eye(3)
    return identity + factor * (np.asarray(tensor, dtype=np.float64) - identity)


def piezo_norm(tensor: np.ndarray) -> float:
    """Frobenius norm of the full (3, 3, 3) piezoelectric tensor (rotation invariant)."""
    return float(np.linalg.norm(np.asarray(tensor, dtype=np.float64)))
