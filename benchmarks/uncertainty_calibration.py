"""Calibration of the shipped uncertainties and a prescreen benchmark, on the test split.

1. Coverage: the share of test-split DFT values inside the nominal 68 % and 95 % intervals
   (log-normal: ``offset + (v - offset) * exp(+-z sigma)``) for K_VRH, G_VRH, the dielectric means and
   the piezo norm; Spearman rank correlation between the predicted one-sigma and the absolute error.
2. Prescreen: for thresholds users care about, the share of true hits caught when the top 5/10/20 % of
   the test crystals go to DFT, ranked by the predicted value ("mean") or by the probability of
   exceeding the threshold under the calibrated distribution ("P(>t)"), against random selection
   (whose expected recall is the budget itself).

Run from the repository root: ``python benchmarks/uncertainty_calibration.py [--model default]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import norm, spearmanr

from gmt_ase.core.derived import longitudinal_piezo_max
from gmt_ase.core.tensors import full_to_voigt
from gmt_ase.inference.predictor import TensorPredictor
from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.predict import prepare_valid
from gmt_ase.training.data import load_records, split_by_material
from gmt_ase.training.train_invariants import record_invariants

THRESHOLDS = {"k_vrh": 150.0, "g_vrh": 80.0, "eps_electronic_mean": 8.0, "eps_total_mean": 20.0, "eij_max": 1.0}
BUDGETS = (0.05, 0.10, 0.20)


def _collect(model: str, data_dir: str) -> dict[str, np.ndarray]:
    predictor = TensorPredictor.from_checkpoint(model, device="cpu")
    if predictor.calibration is None:
        raise SystemExit(f"model {model!r} carries no uncertainty calibration")
    records = split_by_material(load_records(data_dir))["test"]
    kept, crystals = prepare_valid(records, [r.structure for r in records], predictor)
    outputs = predictor.predict(crystals)
    names = [*INVARIANTS, "eij_max"]
    rows = {key: [] for key in ("pred", "std", "true")}
    for record, out in zip(kept, outputs, strict=True):
        pred = network_invariants(out)
        pred["eij_max"] = out["uncertainty"]["eij_max"] / predictor.calibration["log_sigma"]["piezo_norm"]
        true = record_invariants(record.targets)
        true["eij_max"] = np.nan
        if "piezoelectric" in record.targets:
            true["eij_max"] = longitudinal_piezo_max(full_to_voigt(record.targets["piezoelectric"]))[0]
        rows["pred"].append([pred[n] for n in names])
        rows["std"].append([out["uncertainty"][n] for n in names])
        rows["true"].append([true[n] for n in names])
    arrays = {key: np.array(value, dtype=float) for key, value in rows.items()}
    arrays["log_sigma"] = np.array([predictor.calibration["log_sigma"][n if n != "eij_max" else "piezo_norm"]
                                    for n in names])
    return arrays


def coverage(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Interval coverage and Spearman(spread, error) per invariant."""
    out = {}
    for j, name in enumerate([*INVARIANTS, "eij_max"]):
        offset = INVARIANTS.get(name, 0.0)
        pred, std, true = arrays["pred"][:, j], arrays["std"][:, j], arrays["true"][:, j]
        ok = np.isfinite(true) & (true > offset) & (pred > offset)
        log_error = np.abs(np.log(pred[ok] - offset) - np.log(true[ok] - offset))
        sigma = arrays["log_sigma"][j]
        out[name] = {
            "n": int(ok.sum()),
            "coverage_68": float((log_error <= sigma).mean()),
            "coverage_95": float((log_error <= 1.959964 * sigma).mean()),
            "spearman_std_vs_abs_error": float(spearmanr(std[ok], np.abs(pred[ok] - true[ok])).statistic),
        }
    return out


def prescreen(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, dict[str, float]]]:
    """Recall of true hits at DFT budgets, ranking by mean or by P(value > threshold)."""
    names = [*INVARIANTS, "eij_max"]
    out = {}
    for name, threshold in THRESHOLDS.items():
        j = names.index(name)
        offset = INVARIANTS.get(name, 0.0)
        pred, true = arrays["pred"][:, j], arrays["true"][:, j]
        ok = np.isfinite(true)
        pred, true = pred[ok], true[ok]
        hits = true > threshold
        sigma = arrays["log_sigma"][j]
        with np.errstate(divide="ignore"):
            z = (np.log(np.clip(pred - offset, 1e-12, None)) - np.log(threshold - offset)) / sigma
        probability = norm.cdf(z)
        result = {"n": int(len(true)), "hits": int(hits.sum())}
        for budget in BUDGETS:
            k = max(1, round(budget * len(true)))
            for label, score in (("mean", pred), ("P(>t)", probability + 1e-9 * pred)):
                chosen = np.argsort(-score)[:k]
                result[f"{label} @{int(budget * 100)}%"] = float(hits[chosen].sum() / max(hits.sum(), 1))
            result[f"random @{int(budget * 100)}%"] = budget
        out[f"{name} > {threshold:g}"] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/uncertainty_calibration.json")
    args = parser.parse_args()
    arrays = _collect(args.model, args.data_dir)
    report = {"model": args.model, "coverage": coverage(arrays), "prescreen": prescreen(arrays)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
