"""Result records of the batched API: one :class:`TensorPrediction` or :class:`PredictionFailure` per input.

Both are frozen dataclasses with a JSON-safe :meth:`to_dict`; ``ok`` tells them apart without
``isinstance``. Tensors are float64 NumPy arrays in the Cartesian frame of the input structure, in
pymatgen Voigt order (xx yy zz yz xz xy) for the piezoelectric and elastic tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from gmt_ase.derived import DERIVED_UNITS, derived_properties
from gmt_ase.tensors import TARGETS, full_to_voigt

__all__ = ["TENSOR_UNITS", "PredictionFailure", "TensorPrediction", "prediction_from_cartesian"]

#: Unit of every tensor field ("1" = dimensionless), from the target registry.
TENSOR_UNITS: dict[str, str] = {name: spec.unit for name, spec in TARGETS.items()}
_TENSOR_FIELDS = tuple(TENSOR_UNITS)


@dataclass(frozen=True)
class TensorPrediction:
    """Predicted tensors of one structure.

    Attributes
    ----------
    index
        Position of the structure in the input sequence.
    dielectric_electronic, dielectric_ionic, dielectric_total
        (3, 3) dielectric tensors (high-frequency, ionic, and their sum).
    piezoelectric
        (3, 6) piezoelectric stress tensor ``e_iJ`` in C/m^2, Voigt order xx yy zz yz xz xy.
    elastic
        (6, 6) stiffness ``C_IJ`` in GPa, same Voigt order.
    symmetry
        ``SymmetryInfo.as_dict()``: space group, point group, symprec and number of operations.
    derived
        Derived quantities (see :mod:`gmt_ase.derived`), JSON-safe. Computed on first access and cached:
        pymatgen's moduli cost more than the prediction itself, and a screen may not need them.

    """

    index: int
    dielectric_electronic: np.ndarray
    dielectric_ionic: np.ndarray
    dielectric_total: np.ndarray
    piezoelectric: np.ndarray
    elastic: np.ndarray
    symmetry: dict
    ok: ClassVar[bool] = True

    @cached_property
    def derived(self) -> dict[str, Any]:
        """Derived quantities of the tensors (K/G, anisotropy, stability, eigenvalues, d, ...)."""
        return derived_properties(
            self.dielectric_electronic, self.dielectric_ionic, self.piezoelectric, self.elastic
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: tensors as nested lists, plus ``"units"`` for tensors and derived keys."""
        out: dict[str, Any] = {"index": int(self.index), "ok": True}
        for name in _TENSOR_FIELDS:
            out[name] = np.asarray(getattr(self, name), dtype=float).tolist()
        out["symmetry"] = dict(self.symmetry)
        out["derived"] = dict(self.derived)
        out["units"] = {**TENSOR_UNITS, **{f"derived.{k}": u for k, u in DERIVED_UNITS.items()}}
        return out


@dataclass(frozen=True)
class PredictionFailure:
    """A structure that could not be predicted, with the reason.

    Attributes
    ----------
    index
        Position of the structure in the input sequence.
    error_type
        Class name of the exception, e.g. ``"UnsupportedElementError"``.
    message
        The exception's message.

    """

    index: int
    error_type: str
    message: str
    ok: ClassVar[bool] = False

    @classmethod
    def from_exception(cls, index: int, error: BaseException) -> PredictionFailure:
        """Build a failure record from a caught exception."""
        return cls(index=index, error_type=type(error).__name__, message=str(error))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with ``index``, ``ok`` (False), ``error_type`` and ``error`` (the message)."""
        return {"index": int(self.index), "ok": False, "error_type": self.error_type, "error": self.message}


def prediction_from_cartesian(index: int, tensors: dict[str, np.ndarray], symmetry: dict) -> TensorPrediction:
    """Assemble a :class:`TensorPrediction` from Cartesian model outputs.

    Parameters
    ----------
    index
        Position of the structure in the input sequence.
    tensors
        ``dielectric_electronic`` (3, 3), ``dielectric_ionic`` (3, 3), ``piezoelectric`` (3, 3, 3) and
        ``elastic`` (3, 3, 3, 3), already projected onto the crystal's point group.
    symmetry
        ``SymmetryInfo.as_dict()``.

    """
    eps_el = full_to_voigt(tensors["dielectric_electronic"])  # (3, 3), symmetric part
    eps_ion = full_to_voigt(tensors["dielectric_ionic"])  # (3, 3)
    piezo = full_to_voigt(tensors["piezoelectric"])  # (3, 6)
    elastic = full_to_voigt(tensors["elastic"])  # (6, 6)
    elastic = 0.5 * (elastic + elastic.T)  # major symmetry ijkl = klij
    return TensorPrediction(
        index=index,
        dielectric_electronic=eps_el,
        dielectric_ionic=eps_ion,
        dielectric_total=eps_el + eps_ion,
        piezoelectric=piezo,
        elastic=elastic,
        symmetry=dict(symmetry),
    )
