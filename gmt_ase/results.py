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

from gmt_ase.core.derived import DERIVED_UNITS, derived_properties
from gmt_ase.core.invariants import INVARIANTS
from gmt_ase.core.tensors import TARGETS, full_to_voigt

__all__ = [
    "NO_UNCERTAINTY_NOTE",
    "SCALAR_LOG_OFFSETS",
    "SCALAR_STD_KEYS",
    "TENSOR_STD_KEYS",
    "TENSOR_UNITS",
    "PredictionFailure",
    "TensorPrediction",
    "prediction_from_cartesian",
    "uncertainty_from_cartesian",
]

#: Unit of every tensor field ("1" = dimensionless), from the target registry.
TENSOR_UNITS: dict[str, str] = {name: spec.unit for name, spec in TARGETS.items()}
_TENSOR_FIELDS = tuple(TENSOR_UNITS)
#: ``TensorPrediction.uncertainty`` keys of the tensors' one-sigma arrays (same Voigt form and units).
TENSOR_STD_KEYS: tuple[str, ...] = tuple(f"{name}_std" for name in _TENSOR_FIELDS)
#: Derived scalars with a one-sigma value, stored as ``"<name>_std"`` (units of ``DERIVED_UNITS[name]``).
SCALAR_STD_KEYS: tuple[str, ...] = ("k_vrh", "g_vrh", "eps_electronic_mean", "eps_total_mean", "eij_max")
#: The calibrated distribution of each scalar of :data:`SCALAR_STD_KEYS`: ``value - offset`` is log-normal about
#: the predicted ``value - offset`` with log-sigma ``std / (value - offset)`` (:mod:`gmt_ase.invariant.uncertainty`;
#: ``eij_max`` scales with the piezo norm).
SCALAR_LOG_OFFSETS: dict[str, float] = {
    key: float(INVARIANTS["piezo_norm" if key == "eij_max" else key]) for key in SCALAR_STD_KEYS
}
#: Said wherever a model has no calibrated spread: unknown, never zero.
NO_UNCERTAINTY_NOTE = (
    "no uncertainty: this model has no calibrated spread (e.g. a checkpoint of your own, not calibrated); "
    "the error of these predictions is unknown, not zero"
)


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
    warnings
        Applicability warnings (see :mod:`gmt_ase.invariant.applicability`): short sentences, empty when all is well.
    uncertainty
        One standard deviation of every tensor under ``"<tensor>_std"`` (same Voigt form and units as the
        tensor; ``dielectric_total_std = sqrt(electronic^2 + ionic^2)``) and of the scalars of
        :data:`SCALAR_STD_KEYS` under ``"<name>_std"``; ``None`` when the model has no calibrated spread.
    uncertainty_note
        :data:`NO_UNCERTAINTY_NOTE` when ``uncertainty`` is ``None``, else ``None``.
    piezo_prototype
        Material id of the known crystal whose DFT piezoelectric tensor gave this one its direction
        (:mod:`gmt_ase.invariant.piezo_prototypes`); ``None`` when the direction is the network's.
    derived
        Derived quantities (see :mod:`gmt_ase.core.derived`), JSON-safe. Computed on first access and cached:
        pymatgen's moduli cost more than the prediction itself, and a screen may not need them.

    """

    index: int
    dielectric_electronic: np.ndarray
    dielectric_ionic: np.ndarray
    dielectric_total: np.ndarray
    piezoelectric: np.ndarray
    elastic: np.ndarray
    symmetry: dict
    warnings: tuple[str, ...] = ()
    uncertainty: dict[str, Any] | None = None
    uncertainty_note: str | None = NO_UNCERTAINTY_NOTE
    piezo_prototype: str | None = None
    ok: ClassVar[bool] = True

    @cached_property
    def derived(self) -> dict[str, Any]:
        """Derived quantities of the tensors (K/G, anisotropy, stability, eigenvalues, d, ...)."""
        return derived_properties(self.dielectric_electronic, self.dielectric_ionic, self.piezoelectric, self.elastic)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: tensors as nested lists, plus ``"units"`` for tensors and derived keys."""
        out: dict[str, Any] = {"index": int(self.index), "ok": True}
        for name in _TENSOR_FIELDS:
            out[name] = np.asarray(getattr(self, name), dtype=float).tolist()
        out["symmetry"] = dict(self.symmetry)
        out["derived"] = dict(self.derived)
        out["warnings"] = list(self.warnings)
        out["uncertainty"] = _jsonable(self.uncertainty)
        out["uncertainty_note"] = self.uncertainty_note
        out["piezo_prototype"] = self.piezo_prototype
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


def _jsonable(uncertainty: dict[str, Any] | None) -> dict[str, Any] | None:
    if uncertainty is None:
        return None
    return {key: None if v is None else np.asarray(v, dtype=float).tolist() for key, v in uncertainty.items()}


def uncertainty_from_cartesian(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """Convert the predictor's one-sigma values (Cartesian) to ``TensorPrediction.uncertainty``.

    Parameters
    ----------
    raw
        ``None`` (no spread), or a dict with Cartesian one-sigma arrays ``dielectric_electronic`` (3, 3),
        ``dielectric_ionic`` (3, 3), ``piezoelectric`` (3, 3, 3), ``elastic`` (3, 3, 3, 3) and scalars
        named in :data:`SCALAR_STD_KEYS`; a missing entry becomes ``None``.

    Returns
    -------
    dict or None
        ``"<tensor>_std"`` arrays in Voigt form (``dielectric_total_std`` is the root sum of squares of
        electronic and ionic: independent errors) and ``"<scalar>_std"`` floats.

    Raises
    ------
    FloatingPointError
        If a value is negative, NaN or infinite.

    """
    if raw is None:
        return None
    out: dict[str, Any] = {}
    for name in ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic"):
        value = raw.get(name)
        out[f"{name}_std"] = None if value is None else full_to_voigt(np.asarray(value, dtype=np.float64))
    el, ion = out["dielectric_electronic_std"], out["dielectric_ionic_std"]
    out["dielectric_total_std"] = None if el is None or ion is None else np.sqrt(el**2 + ion**2)
    if out["elastic_std"] is not None:
        out["elastic_std"] = 0.5 * (out["elastic_std"] + out["elastic_std"].T)
    for name in SCALAR_STD_KEYS:
        out[f"{name}_std"] = None if raw.get(name) is None else float(raw[name])
    bad = [key for key, v in out.items() if v is not None and not np.all(np.isfinite(v) & (np.asarray(v) >= 0))]
    if bad:
        raise FloatingPointError(f"the model returned negative or non-finite uncertainties for {', '.join(bad)}")
    return out


def prediction_from_cartesian(
    index: int,
    tensors: dict[str, np.ndarray],
    symmetry: dict,
    warnings: tuple[str, ...] | list[str] = (),
    uncertainty: dict[str, Any] | None = None,
    piezo_prototype: str | None = None,
) -> TensorPrediction:
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
    warnings
        Applicability warnings.
    uncertainty
        The predictor's Cartesian one-sigma values (see :func:`uncertainty_from_cartesian`) or ``None``.
    piezo_prototype
        Material id of the piezoelectric prototype, if one gave the direction.

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
        warnings=tuple(warnings),
        uncertainty=uncertainty_from_cartesian(uncertainty),
        uncertainty_note=None if uncertainty is not None else NO_UNCERTAINTY_NOTE,
        piezo_prototype=piezo_prototype,
    )
