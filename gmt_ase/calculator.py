"""ASE calculator for dielectric, piezoelectric and elastic tensors: a thin adapter over the batched API.

``atoms.calc = GMTCalculator()`` then ``atoms.calc.get_property("elastic_tensor", atoms)``: one
:meth:`GMTCalculator.calculate` fills every property (later requests are cache hits via ``check_state``).
Results are in the Cartesian frame of the given Atoms and satisfy its point group exactly.

The model comes from :func:`gmt_ase.inference.cache.load_predictor` (one predictor per model, device and
dtype, shared with every other calculator and :func:`gmt_ase.predict_tensors` call in the process); the
prediction itself is :func:`gmt_ase.predict.predict_one`. Nothing here changes global torch state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from gmt_ase.core.symmetry import DEFAULT_SYMPREC
from gmt_ase.inference.cache import load_predictor, resolve_dtype
from gmt_ase.predict import Result, iter_predictions, predict_one

if TYPE_CHECKING:
    import torch
    from ase import Atoms
    from pymatgen.analysis.elasticity.elastic import ElasticTensor
    from pymatgen.analysis.piezo import PiezoTensor
    from pymatgen.core.tensors import Tensor

    from gmt_ase.inference.predictor import TensorPredictor
    from gmt_ase.results import TensorPrediction

__all__ = ["PROPERTY_FIELDS", "GMTCalculator"]

#: ASE property name -> TensorPrediction field.
PROPERTY_FIELDS: dict[str, str] = {
    "dielectric_tensor": "dielectric_electronic",
    "dielectric_tensor_ionic": "dielectric_ionic",
    "dielectric_tensor_total": "dielectric_total",
    "piezoelectric_tensor": "piezoelectric",
    "elastic_tensor": "elastic",
}
_DIELECTRIC_KINDS = {"electronic": "dielectric_tensor", "ionic": "dielectric_tensor_ionic",
                     "total": "dielectric_tensor_total"}


class _LazyDerived(Mapping[str, Any]):
    """``results["derived"]``: the prediction's derived quantities, computed on first read, not in calculate.

    They cost about 10 ms per crystal (more than the prediction); :attr:`TensorPrediction.derived` caches them.
    """

    def __init__(self, prediction: TensorPrediction) -> None:
        self._prediction = prediction

    def __getitem__(self, key: str) -> Any:
        return self._prediction.derived[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prediction.derived)

    def __len__(self) -> int:
        return len(self._prediction.derived)

    def __repr__(self) -> str:
        return repr(self._prediction.derived)


class GMTCalculator(Calculator):
    """ASE calculator predicting dielectric, piezoelectric and elastic tensors with a GMTNet-style model.

    Parameters
    ----------
    model
        ``"default"`` (the model shipped with gmt_ase) or the path of a checkpoint.
    device
        Torch device, e.g. ``"cpu"`` or ``"cuda:0"``; ``None`` means CUDA if available, else CPU.
    dtype
        ``"float32"`` (default) or ``"float64"`` for the network; results are always float64.
    symprec
        spglib tolerance in Angstrom for the point group the results are projected onto.
    **kwargs
        Passed to :class:`ase.calculators.calculator.Calculator`.

    Notes
    -----
    The model is loaded when the calculator is created (so a bad checkpoint fails at once with
    :class:`gmt_ase.inference.io.CheckpointError`), through the module-level cache. Parameters are plain JSON
    values, so ``todict()`` works with trajectories and ``ase.db``. Properties (shapes, units):
    ``dielectric_tensor`` (3, 3) electronic/high-frequency, ``dielectric_tensor_ionic`` and
    ``dielectric_tensor_total`` (3, 3), ``piezoelectric_tensor`` (3, 6) Voigt C/m^2 and
    ``elastic_tensor`` (6, 6) Voigt GPa, Voigt order xx yy zz yz xz xy. ``results`` also holds
    ``space_group``, ``space_group_number``, ``point_group``, ``symprec``, ``derived`` (a read-only mapping
    computed on first read, see :meth:`get_derived_properties`), ``warnings``
    (applicability warnings, a list of sentences, empty when all is well; see gmt_ase.invariant.applicability),
    ``"<property>_std"`` for each tensor (one standard deviation, same shape and unit; ``None`` when the
    model has no calibrated spread, never zeros), ``uncertainty`` (``TensorPrediction.uncertainty``),
    ``uncertainty_note`` (why there is none, else None) and ``piezo_prototype`` (material id of the known
    crystal that gave the piezo tensor its direction, else None).

    """

    default_parameters: dict[str, Any] = {
        "model": "default",
        "device": None,
        "dtype": "float32",
        "symprec": DEFAULT_SYMPREC,
    }

    def __init__(
        self,
        model: str | os.PathLike = "default",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype = "float32",
        symprec: float = DEFAULT_SYMPREC,
        **kwargs: Any,
    ) -> None:
        from gmt_ase.inference.io import model_reference  # imports torch, which the model needs next anyway

        super().__init__(
            model=model_reference(model),
            device=None if device is None else str(device),
            dtype=resolve_dtype(dtype),
            symprec=float(symprec),
            **kwargs,
        )
        self.implemented_properties = list(PROPERTY_FIELDS)
        self.predictor: TensorPredictor = load_predictor(
            self.parameters["model"], self.parameters["device"], self.parameters["dtype"]
        )

    def set(self, **kwargs: Any) -> dict[str, Any]:
        """Set parameters (only ``symprec`` after creation); any change discards the cached results."""
        fixed = {"model", "device", "dtype"} & set(kwargs)
        if fixed and hasattr(self, "predictor"):
            raise ValueError(f"cannot change {sorted(fixed)} of an existing GMTCalculator; create a new one")
        if "symprec" in kwargs and not float(kwargs["symprec"]) > 0:
            raise ValueError(f"symprec must be positive, got {kwargs['symprec']}")
        changed = super().set(**kwargs)
        if changed:
            self.reset()
        return changed

    @property
    def model_info(self) -> dict[str, Any]:
        """``name``, ``version``, ``sha256`` and ``gmt_ase_version`` of the loaded model."""
        card = self.predictor.card
        return {key: card.get(key) for key in ("name", "version", "sha256", "gmt_ase_version")}

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        """Predict every property of ``atoms`` at once (``properties`` is ignored: all are filled)."""
        super().calculate(atoms, properties or list(PROPERTY_FIELDS), system_changes)
        prediction = predict_one(self.atoms, self.predictor, float(self.parameters["symprec"]))
        results: dict[str, Any] = {
            name: np.array(getattr(prediction, field)) for name, field in PROPERTY_FIELDS.items()
        }
        uncertainty = prediction.uncertainty or {}
        for name, field in PROPERTY_FIELDS.items():  # None (unknown, never zero) for a model without spread
            std = uncertainty.get(f"{field}_std")
            results[f"{name}_std"] = None if std is None else np.array(std)
        symmetry = prediction.symmetry
        results.update(
            space_group=symmetry["space_group_symbol"],
            space_group_number=symmetry["space_group_number"],
            point_group=symmetry["point_group"],
            symprec=symmetry["symprec"],
            derived=_LazyDerived(prediction),
            warnings=list(prediction.warnings),
            uncertainty_note=prediction.uncertainty_note,
            uncertainty=prediction.uncertainty,
            piezo_prototype=prediction.piezo_prototype,
        )
        self.results = results

    def _property(self, name: str, atoms: Atoms | None) -> np.ndarray:
        return np.asarray(self.get_property(name, atoms))

    def get_elastic_tensor(self, atoms: Atoms | None = None) -> ElasticTensor:
        """Stiffness as a pymatgen ``ElasticTensor`` (GPa) in the frame of ``atoms``."""
        from pymatgen.analysis.elasticity.elastic import ElasticTensor

        return ElasticTensor.from_voigt(self._property("elastic_tensor", atoms))

    def get_piezo_tensor(self, atoms: Atoms | None = None) -> PiezoTensor:
        """Piezoelectric stress tensor as a pymatgen ``PiezoTensor`` (C/m^2) in the frame of ``atoms``."""
        from pymatgen.analysis.piezo import PiezoTensor

        return PiezoTensor.from_voigt(self._property("piezoelectric_tensor", atoms))

    def get_dielectric_tensor(self, atoms: Atoms | None = None, kind: str = "electronic") -> Tensor:
        """Dielectric tensor as a pymatgen ``Tensor``; ``kind`` is electronic, ionic or total."""
        from pymatgen.core.tensors import Tensor

        if kind not in _DIELECTRIC_KINDS:
            raise ValueError(f"kind must be one of {sorted(_DIELECTRIC_KINDS)}, got {kind!r}")
        return Tensor(self._property(_DIELECTRIC_KINDS[kind], atoms))

    def get_derived_properties(self, atoms: Atoms | None = None) -> dict[str, Any]:
        """Return the derived quantities (moduli, stability, piezo coefficients...): see gmt_ase.core.derived.

        Also ``"<name>_std"`` (one sigma, same unit) for ``k_vrh``, ``g_vrh``, ``eps_electronic_mean``,
        ``eps_total_mean`` and ``eij_max``: ``None`` when the model has no calibrated spread (see
        ``results["uncertainty_note"]``).
        """
        from gmt_ase.results import SCALAR_STD_KEYS

        self.get_property("elastic_tensor", atoms)  # (re)calculates if needed
        stds = self.results.get("uncertainty") or {}
        return {**self.results["derived"], **{f"{key}_std": stds.get(f"{key}_std") for key in SCALAR_STD_KEYS}}

    def predict(
        self, structures: Iterable[Any], batch_size: int = 64, progress: bool = False
    ) -> list[Result]:
        """Predict many structures with this calculator's model and symprec (see ``predict_tensors``)."""
        return list(
            iter_predictions(
                structures,
                self.predictor,
                symprec=float(self.parameters["symprec"]),
                batch_size=batch_size,
                progress=progress,
            )
        )
