"""Read GMTNet's JARVIS pickles safely and convert their entries to gmt_ase conventions.

A GMTNet JARVIS pickle is a list of dicts with the keys

* ``atoms``: a JARVIS atoms dict (``lattice_mat`` rows = lattice vectors, ``coords``, ``elements``,
  ``cartesian``);
* ``dielectric``: 3x3 relative permittivity;
* ``piezoelectric_C_m2``: 3x6 piezoelectric stress coefficients in VASP column order (xx yy zz xy yz zx);
* ``elastic_total_kbar``: 6x6 stiffness in kbar, VASP order;
* optionally ``jid``.

Any tensor key may be missing or ``None``. JARVIS's ``dielectric`` is not documented as electronic (eps_inf)
or total, so it is stored as ``dielectric_total`` unless the entry says otherwise in ``dielectric_kind`` (or
``dielectric_type``): ``"electronic"``, ``"ionic"`` or ``"total"``.

Pickles can run arbitrary code when loaded, so :func:`load_pickle` only resolves builtin containers and the
few NumPy functions that rebuild arrays, dtypes and scalars.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from gmt_ase.core.tensors import vasp_to_voigt, voigt_to_full

__all__ = ["ALLOWED_GLOBALS", "RestrictedUnpickler", "load_pickle", "jarvis_structure", "jarvis_targets"]

KBAR_TO_GPA = 0.1
_NUMPY_GLOBALS = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),  # protocol-5 pickles of contiguous arrays
}
#: ``(module, name)`` pairs the restricted unpickler may resolve.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "bytearray", "bytes")}
    | {("builtins", name) for name in ("str", "int", "float", "complex", "bool")}
    | {("_codecs", "encode")}  # protocol <= 2 pickles store array bytes through it
    | {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(f"{pkg}.{module}", name) for pkg in ("numpy.core", "numpy._core") for module, name in _NUMPY_GLOBALS}
)
_DIELECTRIC_KINDS = {
    "electronic": "dielectric_electronic",
    "ionic": "dielectric_ionic",
    "total": "dielectric_total",
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global outside :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve ``module.name`` only if it is allowed.

        Raises
        ------
        pickle.UnpicklingError
            If the pickle refers to any other global, e.g. ``posix.system``.

        """
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from an untrusted pickle")
        return super().find_class(module, name)


def load_pickle(path: str | Path) -> Any:
    """Load a pickle file with :class:`RestrictedUnpickler`."""
    with open(path, "rb") as handle:
        return RestrictedUnpickler(handle).load()


def jarvis_structure(atoms: dict[str, Any]) -> Structure:
    """Build a pymatgen ``Structure`` in the same Cartesian frame as a JARVIS atoms dict."""
    lattice = Lattice(np.asarray(atoms["lattice_mat"], dtype=float).reshape(3, 3))
    coords = np.asarray(atoms["coords"], dtype=float).reshape(-1, 3)
    species = [str(element) for element in atoms["elements"]]
    return Structure(lattice, species, coords, coords_are_cartesian=bool(atoms.get("cartesian", False)))


def jarvis_targets(entry: dict[str, Any]) -> dict[str, np.ndarray]:
    """Convert the tensors of one JARVIS entry to Cartesian full tensors in gmt_ase units.

    Returns
    -------
    dict of str to numpy.ndarray
        Any of ``dielectric_total`` (or ``dielectric_electronic``/``dielectric_ionic`` when the entry says
        so), ``piezoelectric`` (3, 3, 3) in C/m^2 and ``elastic`` (3, 3, 3, 3) in GPa.

    """
    targets: dict[str, np.ndarray] = {}
    if entry.get("dielectric") is not None:
        kind = entry.get("dielectric_kind", entry.get("dielectric_type", "total"))
        if kind not in _DIELECTRIC_KINDS:
            raise ValueError(f"unknown dielectric_kind {kind!r}; expected one of {sorted(_DIELECTRIC_KINDS)}")
        eps = np.asarray(entry["dielectric"], dtype=float).reshape(3, 3)
        targets[_DIELECTRIC_KINDS[kind]] = 0.5 * (eps + eps.T)
    if entry.get("piezoelectric_C_m2") is not None:
        piezo = np.asarray(entry["piezoelectric_C_m2"], dtype=float).reshape(3, 6)
        targets["piezoelectric"] = voigt_to_full(vasp_to_voigt(piezo))
    if entry.get("elastic_total_kbar") is not None:
        kbar = np.asarray(entry["elastic_total_kbar"], dtype=float).reshape(6, 6)
        voigt = vasp_to_voigt(kbar) * KBAR_TO_GPA
        targets["elastic"] = voigt_to_full(0.5 * (voigt + voigt.T))
    return targets
