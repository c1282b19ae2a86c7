"""Predictions, spread inputs and DFT values of labelled records: what the spread is fitted and scored on.

:func:`collect` predicts records with a checkpoint and returns, per crystal, the final invariants, the
spread inputs of :mod:`gmt_ase.invariant.spread` (member invariants, descriptors, elements) and the DFT
invariants; calibration (:mod:`gmt_ase.training.calibration`) and ``benchmarks/uncertainty_calibration.py``
share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gmt_ase.core.derived import longitudinal_piezo_max
from gmt_ase.core.tensors import full_to_voigt
from gmt_ase.inference.members import capture_member_outputs, member_invariants
from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.training.data import TensorRecord
from gmt_ase.training.train_invariants import record_invariants

__all__ = ["collect", "record_descriptors"]


def record_descriptors(predictor: Any, records: Sequence[TensorRecord]) -> tuple[list[TensorRecord], np.ndarray]:
    """Return the invariant model's descriptors (model columns) of the records the predictor accepts."""
    from gmt_ase.predict import prepare_valid

    kept, crystals = prepare_valid(records, [r.structure for r in records], predictor)
    model = predictor.invariant_model
    return kept, model.columns(model.all_descriptors(predictor.graphs(crystals), [c.cell for c in crystals]))


def collect(predictor: Any, records: Sequence[TensorRecord], batch_size: int = 64) -> dict[str, Any]:
    """Predict ``records`` and gather what the spread needs, with the DFT truth.

    Parameters
    ----------
    predictor
        A :class:`gmt_ase.inference.predictor.TensorPredictor` with an invariant model.
    records
        Labelled records; those the predictor refuses are left out.

    Returns
    -------
    dict
        ``pred``, ``true`` (N, 5) invariants in :data:`INVARIANTS` order (NaN where absent), ``members``
        (M, N, 5) member invariants (M = 0 for a single network), ``descriptors`` (N, D), ``numbers`` (list
        of atomic-number arrays), ``eij_max`` / ``eij_max_true`` (N,), ``records`` (those kept), ``space_group``,
        ``material_id``, ``source`` and ``outputs`` (the predictor's results).
    """
    from gmt_ase.predict import prepare_valid

    kept, crystals = prepare_valid(records, [r.structure for r in records], predictor)
    with capture_member_outputs(predictor.model) as calls:
        outputs = predictor.predict(crystals, batch_size=batch_size)
    names = list(INVARIANTS)
    members = np.zeros((0, len(kept), len(names)))
    if calls:
        per_call = [member_invariants(call) for call in calls]
        members = np.concatenate([np.stack([c[n] for n in names], axis=-1) for c in per_call], axis=1)
    model = predictor.invariant_model
    descriptors = model.columns(model.all_descriptors(predictor.graphs(crystals), [c.cell for c in crystals]))
    pred, true, eij_true, eij_pred = [], [], [], []
    for record, out in zip(kept, outputs, strict=True):
        own = network_invariants(out)
        pred.append([own[n] for n in names])
        truth = record_invariants(record.targets)
        true.append([truth[n] for n in names])
        piezo = record.targets.get("piezoelectric")
        eij_true.append(longitudinal_piezo_max(full_to_voigt(piezo))[0] if piezo is not None else np.nan)
        eij_pred.append(longitudinal_piezo_max(full_to_voigt(out["piezoelectric"]))[0])
    return {
        "pred": np.array(pred),
        "true": np.array(true),
        "members": members,
        "descriptors": descriptors,
        "numbers": [np.asarray(c.numbers) for c in crystals],
        "eij_max": np.array(eij_pred),
        "eij_max_true": np.array(eij_true),
        "records": kept,
        "space_group": np.array([c.space_group_number for c in crystals]),
        "material_id": [r.material_id for r in kept],
        "source": [r.source for r in kept],
        "outputs": outputs,
    }
