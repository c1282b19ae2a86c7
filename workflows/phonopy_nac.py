"""Hand-off to phonopy: non-analytical-correction (NAC) parameters from a predicted dielectric tensor.

phonopy's LO-TO splitting needs the high-frequency (electronic) dielectric tensor, which GMTNet predicts
(``TensorPredictionDocument.dielectric_electronic`` / ASE's ``dielectric_tensor``), and Born effective
charges, which come from elsewhere (DFPT, another model, or formal charges as a rough guess).

``nac_params["born"]`` must list the atoms in the order of phonopy's primitive cell. When phonopy is
built with this structure as its unit cell and no primitive matrix, that is the structure's own order,
which is kept here; otherwise use :func:`symmetrized_nac_params` with the same ``primitive_matrix``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["default_nac_factor", "nac_params_from_prediction", "symmetrized_nac_params"]


def default_nac_factor() -> float:
    """Phonopy's NAC unit conversion for eV and Angstrom (VASP/ASE units): Hartree * Bohr ~ 14.40 eV A."""
    try:
        from phonopy.physical_units import get_physical_units
    except ImportError:  # phonopy < 2.26
        from phonopy.units import Bohr, Hartree

        return float(Hartree * Bohr)
    units = get_physical_units()
    return float(units.Hartree * units.Bohr)


def _checked(structure: Any, dielectric: Any, born: Any, neutrality_tol: float, strict: bool):
    n_sites = len(structure)
    eps = np.asarray(dielectric, dtype=float)
    borns = np.asarray(born, dtype=float)
    if eps.shape != (3, 3):
        raise ValueError(f"dielectric tensor must have shape (3, 3), got {eps.shape}")
    if borns.shape != (n_sites, 3, 3):
        raise ValueError(f"born charges must have shape ({n_sites}, 3, 3) got {borns.shape}")
    if not (np.all(np.isfinite(eps)) and np.all(np.isfinite(borns))):
        raise ValueError("dielectric tensor and Born charges must be finite")
    if np.max(np.abs(eps - eps.T)) > 1e-6 * max(1.0, np.max(np.abs(eps))):
        raise ValueError("dielectric tensor must be symmetric")
    if np.min(np.linalg.eigvalsh(eps)) <= 0:
        raise ValueError(f"dielectric tensor is not positive definite: eigenvalues {np.linalg.eigvalsh(eps)}")
    total = borns.sum(axis=0)  # (3, 3): acoustic sum rule wants zero
    if np.max(np.abs(total)) > neutrality_tol:
        message = f"Born charges violate charge neutrality: sum_i Z*_i = {total.round(4).tolist()} (e)"
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=3)
    return eps, borns


def nac_params_from_prediction(
    structure: Any,
    dielectric_electronic: Any,
    born_charges: Any,
    factor: float | str | None = "auto",
    neutrality_tol: float = 0.05,
    strict: bool = False,
    enforce_neutrality: bool = False,
) -> dict[str, Any]:
    """NAC parameters for ``Phonopy.nac_params``, atoms in the order of ``structure``.

    Parameters
    ----------
    structure
        pymatgen ``Structure`` or ASE ``Atoms``: phonopy's unit cell.
    dielectric_electronic
        (3, 3) high-frequency dielectric tensor (e.g. ``doc.dielectric_electronic``), structure's frame.
    born_charges
        (n_atoms, 3, 3) Born effective charges in e, ``Z*[atom, E-field, displacement]`` (VASP order).
    factor
        ``"auto"``: phonopy's value for eV/Angstrom (:func:`default_nac_factor`); ``None``: omit it so that
        phonopy uses its calculator interface's default; or an explicit number.
    neutrality_tol
        Largest allowed entry of ``sum_i Z*_i`` (e).
    strict
        Raise instead of warning when charge neutrality is violated.
    enforce_neutrality
        Subtract the mean charge ``sum_i Z*_i / n`` from every atom (after the check).

    Returns
    -------
    dict
        ``{"born": (n, 3, 3), "dielectric": (3, 3)}`` plus ``"factor"`` unless ``factor`` is None.

    """
    eps, borns = _checked(structure, dielectric_electronic, born_charges, neutrality_tol, strict)
    if enforce_neutrality:
        borns = borns - borns.mean(axis=0, keepdims=True)
    params: dict[str, Any] = {"born": np.ascontiguousarray(borns), "dielectric": np.ascontiguousarray(eps)}
    if factor == "auto":
        params["factor"] = default_nac_factor()
    elif factor is not None:
        params["factor"] = float(factor)
    return params


def _phonopy_atoms(structure: Any) -> Any:
    from phonopy.structure.atoms import PhonopyAtoms

    if hasattr(structure, "lattice"):  # pymatgen
        return PhonopyAtoms(
            symbols=[site.specie.symbol for site in structure],
            cell=np.asarray(structure.lattice.matrix, dtype=float),
            scaled_positions=np.asarray(structure.frac_coords, dtype=float),
        )
    return PhonopyAtoms(
        symbols=structure.get_chemical_symbols(),
        cell=np.asarray(structure.cell[:], dtype=float),
        scaled_positions=structure.get_scaled_positions(),
    )


def symmetrized_nac_params(
    structure: Any,
    dielectric_electronic: Any,
    born_charges: Any,
    symprec: float = 1e-5,
    primitive_matrix: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Like :func:`nac_params_from_prediction`, with Born charges and dielectric symmetrised by phonopy.

    Uses ``phonopy.structure.symmetry.symmetrize_borns_and_epsilon`` (the function phonopy applies to
    VASP's values). With ``primitive_matrix`` (as given to ``Phonopy``), the Born charges are returned for
    the atoms of phonopy's primitive cell, in its order. Other keyword arguments go to
    :func:`nac_params_from_prediction` (``factor``, ``neutrality_tol``, ``strict``, ...).
    """
    from phonopy.structure.symmetry import symmetrize_borns_and_epsilon

    params = nac_params_from_prediction(structure, dielectric_electronic, born_charges, **kwargs)
    borns, eps = symmetrize_borns_and_epsilon(
        params["born"],
        params["dielectric"],
        _phonopy_atoms(structure),
        primitive_matrix=primitive_matrix,
        symprec=symprec,
    )
    params.update(born=np.ascontiguousarray(borns), dielectric=np.ascontiguousarray(eps))
    return params
