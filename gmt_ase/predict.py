"""Batched prediction: many structures in, one result record per structure out, in input order.

Pipeline per chunk of ``batch_size`` structures:

1. validate each structure and detect its symmetry (:func:`prepare_crystal`); a bad one becomes a
   :class:`~gmt_ase.results.PredictionFailure` for its index and the rest go on;
2. predict the good ones in one model call; if that call fails unexpectedly (e.g. out of memory), retry
   them one by one so that only the culprit fails;
3. check the outputs (float64, already projected onto the point group by the predictor), attach the
   applicability warnings (:mod:`gmt_ase.invariant.applicability`) and the one-sigma uncertainties when the model
   has them (key ``"uncertainty"`` of the predictor's output; see
   :func:`gmt_ase.results.uncertainty_from_cartesian`). Derived quantities are computed on first access.

Structures are consumed lazily (any iterable, including a generator), so :func:`iter_predictions` never
holds more than one chunk in memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gmt_ase.core.symmetry import DEFAULT_SYMPREC, SymmetryInfo
from gmt_ase.graph.crystal import CrystalInput
from gmt_ase.graph.crystal import prepare_crystal as _prepare
from gmt_ase.graph.pseudosymmetry import CENTROSYMMETRY_DISTANCE, near_centrosymmetric_warning
from gmt_ase.invariant.applicability import applicability_warnings, output_invariants
from gmt_ase.invariant.piezo_prototypes import distant_prototype_warning
from gmt_ase.results import PredictionFailure, TensorPrediction, prediction_from_cartesian

if TYPE_CHECKING:
    from gmt_ase.inference.predictor import TensorPredictor

__all__ = ["MODEL_OUTPUTS", "PredictorHolder", "Result", "iter_predictions", "predict_one", "predict_tensors",
           "prepare_crystal", "prepare_valid"]

Result = TensorPrediction | PredictionFailure


class PredictorHolder(Protocol):
    """What :func:`predict_tensors` needs of a calculator: its predictor and its ``symprec`` parameter.

    :class:`gmt_ase.calculator.GMTCalculator` is one; this layer never imports it (the calculator is built on
    this module, not the other way round).
    """

    predictor: TensorPredictor
    parameters: Mapping[str, Any]

#: Cartesian tensors returned by ``TensorPredictor.predict`` for each crystal.
MODEL_OUTPUTS = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")


def model_name(predictor: TensorPredictor) -> str:
    """Name of the predictor's model, for messages."""
    return str(predictor.card.get("name", "model"))


def prepare_crystal(
    structure: Any, predictor: TensorPredictor, symprec: float = DEFAULT_SYMPREC
) -> tuple[CrystalInput, SymmetryInfo]:
    """:func:`gmt_ase.graph.crystal.prepare_crystal` for the predictor's species and cutoff (input not modified).

    The crystal's one neighbour list (at the model's cutoff) serves the distance check, the graph and the
    applicability warnings.

    Raises
    ------
    gmt_ase.graph.validation.InvalidStructureError
        (a ``ValueError``) for a structure the model must not predict for.

    """
    return _prepare(structure, predictor.species, symprec, cutoff=predictor.cutoff, model_name=model_name(predictor))


def prepare_valid(
    items: Sequence[Any], structures: Sequence[Any], predictor: TensorPredictor, symprec: float = DEFAULT_SYMPREC
) -> tuple[list[Any], list[CrystalInput]]:
    """Model inputs of the structures that pass validation, with their items (e.g. labelled records).

    Structures that :func:`prepare_crystal` refuses are left out; used by training, calibration and
    benchmarks, which score only what can be predicted.
    """
    kept, crystals = [], []
    for item, structure in zip(items, structures, strict=True):
        try:
            crystals.append(prepare_crystal(structure, predictor, symprec)[0])
        except ValueError:
            continue
        kept.append(item)
    return kept, crystals


def _finish(
    index: int, raw: dict[str, Any], crystal: CrystalInput, symmetry: SymmetryInfo
) -> TensorPrediction:
    tensors = {name: np.asarray(raw[name], dtype=np.float64) for name in MODEL_OUTPUTS}  # projected already
    bad = [name for name, tensor in tensors.items() if not np.all(np.isfinite(tensor))]
    if bad:
        raise FloatingPointError(f"the model returned NaN or infinite values for {', '.join(bad)}")
    prediction = prediction_from_cartesian(
        index, tensors, symmetry.as_dict(), uncertainty=raw.get("uncertainty"),
        piezo_prototype=raw.get("piezo_prototype"),
    )
    invariants = output_invariants(
        prediction.dielectric_electronic, prediction.dielectric_ionic, prediction.piezoelectric, prediction.elastic
    )
    warnings = applicability_warnings(crystal.numbers, crystal.positions, crystal.cell, invariants,
                                      edges=crystal.edges)
    if np.any(prediction.piezoelectric) and CENTROSYMMETRY_DISTANCE in raw:
        near = near_centrosymmetric_warning(float(raw[CENTROSYMMETRY_DISTANCE]))
        warnings += [near] if near is not None else []
    if "piezo_prototype_distance" in raw:
        far = distant_prototype_warning(float(raw["piezo_prototype_distance"]))
        warnings += [far] if far is not None else []
    return replace(prediction, warnings=tuple(warnings))


def predict_one(
    structure: Any, predictor: TensorPredictor, symprec: float = DEFAULT_SYMPREC
) -> TensorPrediction:
    """Predict one structure, raising on any problem (used by the ASE calculator)."""
    crystal, symmetry = prepare_crystal(structure, predictor, symprec)
    (raw,) = predictor.predict([crystal], batch_size=1)
    return _finish(0, raw, crystal, symmetry)


def _model_outputs(
    predictor: TensorPredictor, crystals: list[CrystalInput], batch_size: int
) -> list[dict[str, np.ndarray] | Exception]:
    """Model outputs for a chunk; on an unexpected failure, retry one by one to isolate the culprit."""
    try:
        return list(predictor.predict(crystals, batch_size=batch_size))
    except Exception as error:  # noqa: BLE001 - any failure is reported per structure below
        if len(crystals) == 1:
            return [error]
    outputs: list[dict[str, np.ndarray] | Exception] = []
    for crystal in crystals:
        try:
            outputs.extend(predictor.predict([crystal], batch_size=1))
        except Exception as error:  # noqa: BLE001
            outputs.append(error)
    return outputs


def _predict_chunk(
    chunk: list[tuple[int, Any]], predictor: TensorPredictor, symprec: float, batch_size: int
) -> list[Result]:
    results: dict[int, Result] = {}
    prepared: list[tuple[int, CrystalInput, SymmetryInfo]] = []
    for index, structure in chunk:
        try:
            crystal, symmetry = prepare_crystal(structure, predictor, symprec)
        except Exception as error:  # noqa: BLE001 - a bad structure fails alone
            results[index] = PredictionFailure.from_exception(index, error)
        else:
            prepared.append((index, crystal, symmetry))
    if prepared:
        outputs = _model_outputs(predictor, [crystal for _, crystal, _ in prepared], batch_size)
        for (index, crystal, symmetry), raw in zip(prepared, outputs, strict=True):
            try:
                if isinstance(raw, Exception):
                    raise raw
                results[index] = _finish(index, raw, crystal, symmetry)
            except Exception as error:  # noqa: BLE001
                results[index] = PredictionFailure.from_exception(index, error)
    return [results[index] for index, _ in chunk]


def iter_predictions(
    structures: Iterable[Any],
    predictor: TensorPredictor,
    *,
    symprec: float = DEFAULT_SYMPREC,
    batch_size: int = 64,
    progress: bool = False,
) -> Iterator[Result]:
    """Lazily predict an iterable of structures, yielding one result per structure in input order.

    Parameters
    ----------
    structures
        ASE ``Atoms`` or pymatgen ``Structure`` objects (any iterable, consumed ``batch_size`` at a time).
    predictor
        A loaded ``TensorPredictor``.
    symprec
        spglib tolerance in Angstrom.
    batch_size
        Structures per model call.
    progress
        Show a tqdm progress bar on stderr.

    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    from tqdm.auto import tqdm

    total = len(structures) if isinstance(structures, Sequence) else None
    iterator = iter(enumerate(structures))
    with tqdm(total=total, disable=not progress, file=sys.stderr, unit="structure") as bar:
        while chunk := list(islice(iterator, batch_size)):
            yield from _predict_chunk(chunk, predictor, symprec, batch_size)
            bar.update(len(chunk))


def predict_tensors(
    structures: Iterable[Any],
    *,
    model: str = "default",
    calculator: PredictorHolder | None = None,
    batch_size: int = 64,
    symprec: float | None = None,
    device: str | None = None,
    progress: bool = False,
) -> list[Result]:
    """Predict the tensors of many structures; a bad structure fails alone.

    Parameters
    ----------
    structures
        ASE ``Atoms`` or pymatgen ``Structure`` objects.
    model
        ``"default"`` (the shipped model) or a checkpoint path; used when ``calculator`` is None.
    calculator
        An existing :class:`~gmt_ase.calculator.GMTCalculator` whose model (and symprec) to use.
    batch_size
        Structures per model call.
    symprec
        spglib tolerance in Angstrom; default: the calculator's, else
        :data:`gmt_ase.core.symmetry.DEFAULT_SYMPREC`.
    device
        Torch device; default CUDA if available, else CPU. Used when ``calculator`` is None.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    list
        One :class:`~gmt_ase.results.TensorPrediction` or :class:`~gmt_ase.results.PredictionFailure`
        per structure, in input order (``result.index`` is the position).

    """
    if calculator is None:
        from gmt_ase.inference.cache import load_predictor

        predictor = load_predictor(model, device)
        symprec = DEFAULT_SYMPREC if symprec is None else symprec
    elif model != "default" or device is not None:
        raise ValueError("pass either calculator= or model=/device=, not both")
    else:
        predictor = calculator.predictor
        symprec = float(calculator.parameters["symprec"]) if symprec is None else symprec
    return list(iter_predictions(structures, predictor, symprec=symprec, batch_size=batch_size, progress=progress))
