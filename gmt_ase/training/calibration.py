"""Calibrate a checkpoint's uncertainties on the validation split (see :mod:`gmt_ase.invariant.uncertainty`).

``python -m gmt_ase.training.calibration --model runs/ens.pt --data-dir data --out runs/ens_calibrated.pt``
predicts every validation record, then sets

- per invariant, ``log_sigma = q95(|log error|) / 1.96``: nominal 95 % intervals cover 95 % of the
  validation errors (the errors are heavier-tailed than a normal, so 68 % intervals then cover more);
- per tensor, ``relative_sigma = q68(||pred - DFT||_F / ||DFT||_F)`` over non-zero DFT tensors,

and, for a checkpoint with an invariant model, a per-crystal spread (``"crystal_spread"``: reference crystals
of the train split, log-sigma models fitted on the validation split; :mod:`gmt_ase.training.spread_fit`),
and writes a copy of the checkpoint carrying them under ``"uncertainty"``. The test split is never used.
The per-crystal spread reads only the invariant model's public descriptors (``all_descriptors`` /
``columns``) and the members' outputs, so rerun this command after any change of the model or descriptors.

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

from gmt_ase.inference.io import save_atomically
from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.invariant.uncertainty import TENSOR_NAMES, validate_calibration
from gmt_ase.training.data import ALL_SOURCES, TensorRecord, load_records, split_by_material
from gmt_ase.training.spread_data import collect
from gmt_ase.training.spread_fit import fit_crystal_spread
from gmt_ase.training.train_invariants import record_invariants

__all__ = ["calibrate", "main"]

_Z95 = 1.959963984540054


def calibrate(
    model: str | Path, records: Sequence[TensorRecord], train: Sequence[TensorRecord] | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Calibration data of a checkpoint from labelled (validation) records.

    With ``train`` records (the reference crystals and the error model's residuals) and an invariant model,
    a per-crystal spread is fitted too; ``threads`` are LightGBM's.
    """
    from gmt_ase.inference.predictor import TensorPredictor

    predictor = TensorPredictor.from_checkpoint(model, device="cpu")
    predictor.calibration = None
    collected = collect(predictor, records)
    kept, outputs = collected["records"], collected["outputs"]
    log_errors: dict[str, list[float]] = {name: [] for name in INVARIANTS}
    relative: dict[str, list[float]] = {name: [] for name in TENSOR_NAMES}
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
    calibration = {
        "log_sigma": {name: float(np.quantile(v, 0.95) / _Z95) for name, v in log_errors.items()},
        "relative_sigma": {name: float(np.quantile(v, 0.68)) for name, v in relative.items()},
        "counts": {**{k: len(v) for k, v in log_errors.items()}, **{k: len(v) for k, v in relative.items()}},
        "method": "validation split: log_sigma = q95(|log error|)/1.96, relative_sigma = q68(relative Frobenius error)",
    }
    validate_calibration(calibration)
    if train is not None and predictor.invariant_model is not None:
        spread, summary = fit_crystal_spread(predictor, train, collected, threads=threads)
        calibration["crystal_spread"] = spread.to_dict()
        calibration["crystal_spread_fit"] = summary
        validate_calibration(calibration)
    return calibration


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Calibrate a checkpoint's uncertainties on the validation split.")
    parser.add_argument("--model", required=True, type=Path, help="checkpoint file to calibrate")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="training data folder")
    parser.add_argument("--out", required=True, type=Path, help="calibrated checkpoint to write")
    parser.add_argument(
        "--apply-to",
        type=Path,
        help="write the calibration of --model onto a copy of this checkpoint instead "
        "(a model refit on train + val, whose own validation errors are too small)",
    )
    parser.add_argument("--global-only", action="store_true", help="skip the per-crystal spread")
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads of the error model")
    args = parser.parse_args(argv)
    splits = split_by_material(load_records(args.data_dir, ALL_SOURCES))
    calibration = calibrate(args.model, splits["val"], None if args.global_only else splits["train"], args.threads)
    print(json.dumps({k: v for k, v in calibration.items() if k != "crystal_spread"}, indent=2))
    payload = torch.load(args.apply_to or args.model, map_location="cpu", weights_only=True)
    save_atomically({**payload, "uncertainty": calibration}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
