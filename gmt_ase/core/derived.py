"""Derived quantities of predicted tensors: moduli, stability, dielectric summaries, piezo coefficients.

Elastic moduli come from pymatgen's ``ElasticTensor`` (``k_vrh``, ``g_vrh``, ``universal_anisotropy``,
``homogeneous_poisson``, ``compliance_tensor``); the rest (Born stability, dielectric eigenvalues,
refractive index, maximum longitudinal piezo coefficient) is computed here. Every value is JSON-safe: a
float, a bool, nested lists of floats, or ``None`` where the quantity is undefined (e.g. the compliance
of a singular stiffness matrix).

Units: moduli in GPa, piezoelectric stress coefficients in C/m^2, strain coefficients ``d`` in pC/N,
dielectric quantities dimensionless.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from gmt_ase.core.tensors import mandel_from_voigt, voigt_to_full

__all__ = [
    "DERIVED_UNITS",
    "derived_properties",
    "dielectric_summary",
    "elastic_moduli",
    "longitudinal_coefficients",
    "longitudinal_piezo_max",
    "piezo_strain_coefficients",
]

#: Unit of every derived key ("1" = dimensionless).
DERIVED_UNITS: dict[str, str] = {
    "k_vrh": "GPa",
    "g_vrh": "GPa",
    "universal_anisotropy": "1",
    "homogeneous_poisson": "1",
    "born_stable": "bool",
    "eps_electronic_eigenvalues": "1",
    "eps_electronic_mean": "1",
    "eps_ionic_mean": "1",
    "eps_total_eigenvalues": "1",
    "eps_total_mean": "1",
    "refractive_index": "1",
    "eij_max": "C/m^2",
    "piezo_strain_d": "pC/N",
    "d_max_abs": "pC/N",
}

_N_SPHERE = 2000
#: Best sampled directions refined by Newton's method (two already found every maximum of 300 random tensors
#: that three BFGS runs found; one missed a basin in 1 of 300).
_N_REFINE = 4
_NEWTON_STEPS = 12
#: A candidate this close to a maximum already climbed to (cosine; about 11 degrees) is skipped.
_SAME_BASIN = 0.98


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _finite_list(array: np.ndarray) -> list | None:
    array = np.asarray(array, dtype=float)
    return array.tolist() if np.all(np.isfinite(array)) else None


def elastic_moduli(elastic_voigt: np.ndarray) -> dict[str, Any]:
    """VRH moduli, anisotropy, Poisson ratio and Born stability of a stiffness matrix.

    Parameters
    ----------
    elastic_voigt
        (6, 6) stiffness ``C_IJ`` in GPa, pymatgen Voigt order, no factors.

    Returns
    -------
    dict
        ``k_vrh``, ``g_vrh`` (GPa), ``universal_anisotropy``, ``homogeneous_poisson`` (``None`` where the
        matrix is singular or the value is not finite) and ``born_stable`` (all eigenvalues of the Mandel
        matrix positive, i.e. C positive definite: the frame-independent Born criterion).

    """
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    c_voigt = np.asarray(elastic_voigt, dtype=float)
    tensor = ElasticTensor.from_voigt(c_voigt)
    out: dict[str, Any] = {}
    for key in ("k_vrh", "g_vrh", "universal_anisotropy", "homogeneous_poisson"):
        try:
            with np.errstate(all="ignore"):
                out[key] = _finite(getattr(tensor, key))
        except (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError):
            out[key] = None
    eigenvalues = np.linalg.eigvalsh(mandel_from_voigt(0.5 * (c_voigt + c_voigt.T)))
    out["born_stable"] = bool(np.all(eigenvalues > 0))
    return out


def dielectric_summary(eps_electronic: np.ndarray, eps_ionic: np.ndarray) -> dict[str, Any]:
    """Eigenvalues (ascending) and means of the dielectric tensors and the refractive index.

    The refractive index is ``sqrt(mean eigenvalue of eps_electronic)``; it is ``None`` when that mean is
    not positive.
    """
    eps_el = np.asarray(eps_electronic, dtype=float)
    eps_ion = np.asarray(eps_ionic, dtype=float)
    eps_total = eps_el + eps_ion
    el_eig = np.linalg.eigvalsh(0.5 * (eps_el + eps_el.T))
    total_eig = np.linalg.eigvalsh(0.5 * (eps_total + eps_total.T))
    el_mean = float(np.trace(eps_el)) / 3.0
    return {
        "eps_electronic_eigenvalues": _finite_list(el_eig),
        "eps_electronic_mean": _finite(el_mean),
        "eps_ionic_mean": _finite(float(np.trace(eps_ion)) / 3.0),
        "eps_total_eigenvalues": _finite_list(total_eig),
        "eps_total_mean": _finite(float(np.trace(eps_total)) / 3.0),
        "refractive_index": _finite(math.sqrt(el_mean)) if el_mean > 0 else None,
    }


def fibonacci_sphere(n: int) -> np.ndarray:
    """Return ``n`` nearly uniform unit vectors (Fibonacci lattice on the sphere), shape (n, 3)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    phi = np.pi * (1.0 + 5.0**0.5) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)  # (n, 3)


_SPHERE = fibonacci_sphere(_N_SPHERE)  # (N, 3), computed once


def longitudinal_coefficients(piezo_full: np.ndarray) -> np.ndarray:
    """Return ``n_i n_j n_k e_ijk`` of a (3, 3, 3) tensor for a fixed dense set of unit vectors n.

    The set is a 2000-point Fibonacci sphere; the maximum is within ~1 % of the refined
    :func:`longitudinal_piezo_max`.
    """
    return _sphere_cubes() @ np.asarray(piezo_full, dtype=np.float64).reshape(27)


@functools.cache
def _sphere_cubes() -> np.ndarray:
    """(2000, 27) products ``n_i n_j n_k`` of the sphere points: one matrix-vector product per tensor."""
    cubes = np.einsum("ni,nj,nk->nijk", _SPHERE, _SPHERE, _SPHERE).reshape(len(_SPHERE), 27)
    cubes.flags.writeable = False
    return cubes


def longitudinal_piezo_max(piezo_voigt: np.ndarray) -> tuple[float, np.ndarray]:
    """Maximum longitudinal piezoelectric coefficient ``max_n n_i n_j n_k e_ijk`` over unit vectors n.

    A dense Fibonacci sampling of the sphere finds the best candidates, each of which is then refined by
    Newton's method on the sphere to the local maximum (quadratic convergence, to machine precision), so
    the value does not depend on the frame the tensor is written in. Since the cubic form is odd in n, the
    maximum is never negative.

    Parameters
    ----------
    piezo_voigt
        (3, 6) piezoelectric stress tensor ``e_iJ`` in C/m^2, pymatgen Voigt order.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        The maximum in C/m^2 and the unit direction (3,) where it is reached.

    """
    return longitudinal_max_of_full(voigt_to_full(np.asarray(piezo_voigt, dtype=float)))


def longitudinal_max_of_full(piezo_full: np.ndarray) -> tuple[float, np.ndarray]:
    """:func:`longitudinal_piezo_max` of a (3, 3, 3) Cartesian tensor."""
    full = np.asarray(piezo_full, dtype=np.float64)
    if not np.any(full):
        return 0.0, np.array([0.0, 0.0, 1.0])
    values = longitudinal_coefficients(full)  # (N,)
    sym = (full + full.transpose(1, 0, 2) + full.transpose(2, 1, 0)) / 3.0  # (3, 3, 3), fully symmetric
    best_value, best_dir = float(values.max()), _SPHERE[int(values.argmax())]
    climbed: list[np.ndarray] = []
    for start in np.argsort(values)[::-1][:_N_REFINE]:
        if any(_SPHERE[start] @ top > _SAME_BASIN for top in climbed):
            continue  # next to a maximum found already: the climb would end there too
        value, direction = _sphere_newton(sym, _SPHERE[start], float(values[start]))
        climbed.append(direction)
        if value > best_value:
            best_value, best_dir = value, direction
    return best_value, best_dir


def _sphere_newton(sym: np.ndarray, start: np.ndarray, value: float) -> tuple[float, np.ndarray]:
    """Climb ``f(n) = sym_ijk n_i n_j n_k`` on the unit sphere from ``start`` by Newton steps.

    The Riemannian gradient is ``P g`` and the Hessian ``P H P - (n . g) P`` (``g = 3 sym(n, n)``,
    ``H = 6 sym(n)``, ``P = 1 - n n``); adding ``n n`` keeps the step tangent. A step that would lower ``f``
    (far from a maximum) ends the climb, so the result is never below the start.
    """
    n = np.asarray(start, dtype=np.float64)
    projector = np.empty((3, 3))
    for _ in range(_NEWTON_STEPS):
        sym_n = sym @ n  # (3, 3): sym_ijk n_k
        gradient = 3.0 * sym_n @ n
        outer = np.outer(n, n)
        np.subtract(np.eye(3), outer, out=projector)
        hessian = projector @ (6.0 * sym_n) @ projector - (n @ gradient) * projector + outer
        try:
            step = np.linalg.solve(hessian, -(projector @ gradient))
        except np.linalg.LinAlgError:
            break
        moved = n + step
        moved /= np.linalg.norm(moved)
        moved_value = float(np.einsum("ijk,i,j,k->", sym, moved, moved, moved))
        if not moved_value >= value - 1e-14:
            break
        converged = np.linalg.norm(moved - n) < 1e-13
        n, value = moved, moved_value
        if converged:
            break
    return value, n


def piezo_strain_coefficients(piezo_voigt: np.ndarray, elastic_voigt: np.ndarray) -> np.ndarray | None:
    """Piezoelectric strain coefficients ``d = 1000 e_V S_V`` in pC/N, or ``None`` if C is singular.

    ``S_V`` is pymatgen's Voigt compliance (``ElasticTensor.compliance_tensor.voigt``, 1/GPa), which
    carries the factors 2 and 4 on shear entries; ``e_V`` is in C/m^2.
    """
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    try:
        compliance = ElasticTensor.from_voigt(np.asarray(elastic_voigt, dtype=float)).compliance_tensor.voigt
    except np.linalg.LinAlgError:
        return None
    d = 1000.0 * np.asarray(piezo_voigt, dtype=float) @ np.asarray(compliance, dtype=float)  # (3, 6)
    return d if np.all(np.isfinite(d)) else None


def derived_properties(
    eps_electronic: np.ndarray,
    eps_ionic: np.ndarray,
    piezo_voigt: np.ndarray,
    elastic_voigt: np.ndarray,
) -> dict[str, Any]:
    """All derived quantities of one prediction as a JSON-safe dict (keys and units: :data:`DERIVED_UNITS`).

    Parameters
    ----------
    eps_electronic, eps_ionic
        (3, 3) dielectric tensors.
    piezo_voigt
        (3, 6) piezoelectric stress tensor in C/m^2.
    elastic_voigt
        (6, 6) stiffness in GPa.

    Returns
    -------
    dict
        Floats, bools, nested lists of floats, or ``None`` for undefined values.

    """
    out = elastic_moduli(elastic_voigt)
    out.update(dielectric_summary(eps_electronic, eps_ionic))
    out["eij_max"] = _finite(longitudinal_piezo_max(piezo_voigt)[0])
    d = piezo_strain_coefficients(piezo_voigt, elastic_voigt)
    out["piezo_strain_d"] = None if d is None else d.tolist()
    out["d_max_abs"] = None if d is None else float(np.abs(d).max())
    return {key: out[key] for key in DERIVED_UNITS}
