"""Keep predictions with their structures: :func:`store_results` and :func:`load_results`.

ASE's file formats keep only the calculator properties ASE knows (``dielectric_tensor``), so the elastic,
piezoelectric, ionic and total tensors, their one-sigma values and the warnings would be dropped silently.
:func:`store_results` copies all of them into ``atoms.info`` under ``gmt_``-prefixed keys, as JSON-safe
values (nested lists of floats, numbers, strings, lists of one-line strings) that extxyz, ASE trajectories
and ``ase.io.jsonio`` keep as they are. An ``ase.db`` database (and ``ase.io.write("x.json")``, which is one)
does not keep ``atoms.info``: pass the returned dict as the row's ``data``::

    from ase.db import connect
    from gmt_ase import GMTCalculator, load_results, store_results

    atoms.calc = GMTCalculator()
    with connect("screen.db") as db:
        db.write(atoms, data=store_results(atoms))
    results = load_results(connect("screen.db").get(id=1))  # an ase.db row, or Atoms read back from a file
    results["elastic_tensor"]  # (6, 6) numpy array in GPa

Values missing from a result (no calibrated spread, a derived quantity that is undefined) are not stored,
and :func:`load_results` gives ``None`` for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["PREFIX", "load_results", "store_results"]

#: Prefix of every key that :func:`store_results` writes into ``atoms.info``.
PREFIX = "gmt_"
#: Tensor properties of :class:`gmt_ase.GMTCalculator` (ASE names), each also with ``"<name>_std"``.
_TENSORS = (
    "dielectric_tensor",
    "dielectric_tensor_ionic",
    "dielectric_tensor_total",
    "piezoelectric_tensor",
    "elastic_tensor",
)
#: Plain metadata copied from the calculator's results.
_META = ("space_group", "space_group_number", "point_group", "symprec", "uncertainty_note", "piezo_prototype")


def _derived_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the derived quantities and the derived scalars with a one-sigma value, from their registries."""
    from gmt_ase.core.derived import DERIVED_UNITS
    from gmt_ase.results import SCALAR_STD_KEYS

    return tuple(DERIVED_UNITS), tuple(f"{key}_std" for key in SCALAR_STD_KEYS)


def _plain(value: Any) -> Any:
    """Return a JSON-safe copy: arrays become (nested) lists of floats, numpy scalars Python numbers."""
    if isinstance(value, np.ndarray | list | tuple):
        return np.asarray(value, dtype=float).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _one_line(text: Any) -> str:
    """Return a warning as extxyz keeps it in a list: one line, single quotes for double, no backslashes."""
    return " ".join(str(text).splitlines()).replace('"', "'").replace("\\", "/")


def _results_of(atoms: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the attached GMTCalculator's results for ``atoms`` (calculated if missing or stale), model info."""
    calc = getattr(atoms, "calc", None)
    if calc is None or not hasattr(calc, "model_info"):
        found = "no calculator" if calc is None else f"a {type(calc).__name__}"
        raise ValueError(f"store_results needs atoms with a GMTCalculator attached (atoms.calc), found {found}")
    calc.get_property("elastic_tensor", atoms)  # calculates if the results are missing or stale
    stds = calc.results.get("uncertainty") or {}
    derived = {**calc.results["derived"], **{key: stds.get(key) for key in _derived_names()[1]}}
    return {**calc.results, "derived": derived}, calc.model_info


def store_results(atoms: Any) -> dict[str, Any]:
    """Copy the attached calculator's results into ``atoms.info`` (``gmt_`` keys) and return them.

    Parameters
    ----------
    atoms
        ASE ``Atoms`` with a :class:`gmt_ase.GMTCalculator` attached; the calculation runs now if its
        results are missing or stale. Earlier ``gmt_`` keys of ``atoms.info`` are replaced.

    Returns
    -------
    dict
        The ``gmt_`` entries written: tensors as nested lists (Voigt form, units of the calculator
        properties), ``"<tensor>_std"``, derived quantities and ``"<scalar>_std"``, ``warnings`` (list of
        one-line strings, double quotes made single), ``n_warnings``, symmetry, the model's name, version
        and sha256. Pass it as ``data=`` to ``ase.db``'s ``write``, which does not keep ``atoms.info``.

    Raises
    ------
    ValueError
        If no GMTCalculator is attached.

    """
    results, model = _results_of(atoms)
    stored: dict[str, Any] = {}
    for name in _TENSORS:
        stored[name] = results[name]
        stored[f"{name}_std"] = results.get(f"{name}_std")
    stored.update({key: results.get(key) for key in _META})
    stored.update(results["derived"])
    warnings = [_one_line(w) for w in results.get("warnings") or []]
    stored.update(
        n_warnings=len(warnings),
        model=model.get("name"),
        model_version=model.get("version"),
        model_sha256=model.get("sha256"),
    )
    entries = {PREFIX + key: _plain(value) for key, value in stored.items() if value is not None}
    entries[PREFIX + "warnings"] = warnings  # a list of strings, even when empty
    for key in [key for key in atoms.info if key.startswith(PREFIX)]:
        del atoms.info[key]
    atoms.info.update(entries)
    return entries


def _stored_entries(source: Any) -> Mapping[str, Any]:
    """Return the ``gmt_`` entries of an Atoms' info (or ``info["data"]``), an ase.db row's data or a dict."""
    info = getattr(source, "info", None)
    if info is None:
        data = getattr(source, "data", None)  # an ase.db AtomsRow
        info = data if data is not None else source
    if not isinstance(info, Mapping):
        raise TypeError(f"load_results takes Atoms, an ase.db row or a dict, got {type(source).__name__}")
    if PREFIX + "elastic_tensor" not in info and isinstance(info.get("data"), Mapping):
        info = info["data"]  # Atoms from ase.db's row.toatoms(add_additional_information=True)
    if PREFIX + "elastic_tensor" not in info:
        raise ValueError(
            "no gmt_ase results stored here: call gmt_ase.store_results(atoms) after attaching a "
            "GMTCalculator, and for ase.db write the row with data=store_results(atoms)"
        )
    return info


def load_results(source: Any) -> dict[str, Any]:
    """Return the results stored by :func:`store_results`, by property name (without the ``gmt_`` prefix).

    Parameters
    ----------
    source
        ``Atoms`` read back from extxyz, an ASE trajectory or ``ase.io.jsonio`` (or straight from
        :func:`store_results`), an ``ase.db`` row written with ``data=store_results(atoms)`` (or its
        ``row.toatoms(add_additional_information=True)``), or the dict returned by :func:`store_results`.

    Returns
    -------
    dict
        Tensors and their ``_std`` as float64 numpy arrays (``None`` where not stored), derived quantities
        (eigenvalues and ``piezo_strain_d`` as arrays), ``warnings`` as a list of strings, and metadata.

    Raises
    ------
    ValueError
        If ``source`` holds no stored results.

    """
    info = _stored_entries(source)
    derived, scalar_stds = _derived_names()
    names = [
        *_TENSORS,
        *(f"{name}_std" for name in _TENSORS),
        *_META,
        *derived,
        *scalar_stds,
        "n_warnings",
        "model",
        "model_version",
        "model_sha256",
    ]
    out: dict[str, Any] = {name: info.get(PREFIX + name) for name in names}
    for name, value in out.items():
        if isinstance(value, np.ndarray | list | tuple):
            out[name] = np.asarray(value, dtype=np.float64)
        elif isinstance(value, np.generic):
            out[name] = value.item()
    warnings = info.get(PREFIX + "warnings")
    out["warnings"] = [] if warnings is None or np.size(warnings) == 0 else [str(w) for w in np.atleast_1d(warnings)]
    return out
