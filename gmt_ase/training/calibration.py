"""Calibrate a checkpoint's uncertainties on the validation split (see :mod:`gmt_ase.invariant.uncertainty`).

``python -m gmt_ase.training.calibration --model runs/ens.pt --data-dir data --out runs/ens_calibrated.pt``
predicts every validation record, then sets

- per invariant, ``log_sigma = q95(|log error|) / 1.96``: nominal 95 % intervals cover 95 % of the
  validation errors (the errors are heavier-tailed than a normal, so 68 % intervals then cover more);
- per tensor, ``relative_sigma = q68(||pred - DFT||_F / ||DFT||_F)`` over non-zero DFT tensors,
- for a model with piezo prototypes, the piezo tensor's ``relative_sigma`` per bin of the prototype's
  descriptor distance (:data:`PIEZO_DISTANCE_EDGES`; a bin with fewer than :data:`MIN_BIN` tensors keeps
  the overall value),

and writes a copy of the checkpoint carrying them under ``"uncertainty"``. The test split is never used.

A model whose trees were refit on train + validation (``train_invariants --refit``) has seen the validation
split, so its own validation errors are too small: calibrate the early-stopped model it was refit from and
write the result onto the refit one with ``--apply-to REFIT.pt`` (slightly conservative: the refit model
learned from more data).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.invariant.uncertainty import TENSOR_NAMES, validate_calibration
from gmt_ase.training.data import ALL_SOURCES, TensorRecord, load_records, split_by_material
from gmt_ase.training.train_invariants import record_invariants

__all__ = ["MIN_BIN", "PIEZO_DISTANCE_EDGES", "calibrate", "main"]

_Z95 = 1.959963984540054
#: Upper edges of the piezo prototype distance bins: a close prototype, or a farther one (or none). Issue 9,
#: validation q68 of the relative error below 3 / 3-8 / from 8: 0.65 / 1.50 / 1.40 (22 / 42 / 25 tensors):
#: only a close prototype makes a measurable difference.
PIEZO_DISTANCE_EDGES = (3.0,)
#: Fewest validation tensors a distance bin needs for its own sigmas.
MIN_BIN = 8


def calibrate(model: str | Path, records: Sequence[TensorRecord]) -> dict[str, Any]:
    """Calibration data of a checkpoint from labelled (validation) records."""
    from gmt_ase.inference.predictor import TensorPredictor
    from gmt_ase.predict import prepare_valid

    predictor = TensorPredictor.from_checkpoint(model, device="cpu")
    predictor.calibration = None
    kept, crystals = prepare_valid(records, [r.structure for r in records], predictor)
    outputs = predictor.predict(crystals)
    log_errors: dict[str, list[float]] = {name: [] for name in INVARIANTS}
    relative: dict[str, list[float]] = {name: [] for name in TENSOR_NAMES}
    piezo_rows: list[tuple[float, float]] = []  # (prototype distance, relative Frobenius error)
    for record, pred in zip(kept, outputs, strict=True):
        truth = record_invariants(record.targets)
        own = network_invariants(pred)
        for name, offset in INVARIANTS.items():
            if np.isfinite(truth[name]) and truth[name] > offset and own[name] > offset:
                log_errors[name].append(abs(np.log(own[name] - offset) - np.log(truth[name] - offset)))
        for name in TENSOR_NAMES:
            true = record.targets.get(name)
            if true is not None and np.linalg.norm(true) > 1e-6:
                relative[name].append(float(np.linalg.norm(pred[name] - true) / np.linalg.norm(true)))
        true_piezo = record.targets.get("piezoelectric")
        if "piezo_prototype_distance" in pred and true_piezo is not None and np.linalg.norm(true_piezo) > 1e-6:
            piezo_rows.append((float(pred["piezo_prototype_distance"]), relative["piezoelectric"][-1]))
    calibration = {
        "log_sigma": {name: float(np.quantile(v, 0.95) / _Z95) for name, v in log_errors.items()},
        "relative_sigma": {name: float(np.quantile(v, 0.68)) for name, v in relative.items()},
        "counts": {**{k: len(v) for k, v in log_errors.items()}, **{k: len(v) for k, v in relative.items()}},
        "method": "validation split: log_sigma = q95(|log error|)/1.96, relative_sigma = q68(relative Frobenius error)",
    }
    if piezo_rows:
        calibration["piezo_by_distance"] = _piezo_bins(np.array(piezo_rows), calibration)
    validate_calibration(calibration)
    return calibration


def _piezo_bins(rows: np.ndarray, calibration: dict[str, Any]) -> dict[str, Any]:
    """Calibrate the piezo tensor's relative sigma per prototype-distance bin from (distance, error) rows."""
    bin_of = np.searchsorted(PIEZO_DISTANCE_EDGES, rows[:, 0], side="right")
    out: dict[str, Any] = {"upper_edges": list(PIEZO_DISTANCE_EDGES), "relative_sigma": [], "counts": []}
    for k in range(len(PIEZO_DISTANCE_EDGES) + 1):
        errors = rows[bin_of == k, 1]
        out["counts"].append(len(errors))
        enough = len(errors) >= MIN_BIN
        out["relative_sigma"].append(
            float(max(np.quantile(errors, 0.68), 1e-3)) if enough else calibration["relative_sigma"]["piezoelectric"]
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Calibrate a checkpoint's uncertainties on the validation split.")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint file to calibrate")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="training data folder")
    parser.add_argument("--out", required=True, type=Path, help="calibrated checkpoint to write")
    parser.add_argument("--apply-to", type=Path,
                        help="write the calibration of --model onto a copy of this checkpoint instead "
                             "(a model refit on train + val, whose own validation errors are too small)")
    args = parser.parse_args(argv)
    records = split_by_material(load_records(args.data_dir, ALL_SOURCES))["val"]
    calibration = calibrate(args.model, records)
    print(json.dumps(calibration, indent=2))
    payload = torch.load(args.apply_to or args.model, map_location="cpu", weights_only=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    torch.save({**payload, "uncertainty": calibration}, tmp)
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
