"""Calibration of the shipped uncertainties and a prescreen benchmark, on the test split.

1. Coverage: the share of test-split DFT values inside the nominal 68 % and 95 % intervals
   (log-normal: ``offset + (v - offset) * exp(+-z sigma)``) for K_VRH, G_VRH, the dielectric means, the
   piezo norm and the largest longitudinal piezo coefficient, overall and per crystal system; Spearman rank
   correlation between the relative spread ``sigma / value`` and the relative error ``|value - DFT| / value``
   (``value``: the prediction), and between the one-sigma and the absolute error.
2. Prescreen: for thresholds users care about, the share of true hits caught when the top 5/10/20 % of
   the test crystals go to DFT, ranked by the predicted value ("mean") or by the probability of
   exceeding the threshold under the calibrated log-normal distribution ("P(>t)"), against random selection
   (whose expected recall is the budget itself); and the hits each selection expects (the sum of its
   crystals' P(>t)) against those it finds.

With a per-crystal spread in the checkpoint's calibration (``python -m gmt_ase.training.calibration``) the
sigmas are the crystals' own, computed exactly as the predictor's hook does
(:meth:`gmt_ase.invariant.spread.CrystalSpread.log_sigmas`); otherwise the global ones.

Run from the repository root: ``python benchmarks/uncertainty_calibration.py [--model default|PATH.pt]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import norm, spearmanr

from gmt_ase.evaluation.evaluate import crystal_system
from gmt_ase.inference.predictor import TensorPredictor
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.training.data import load_records, split_by_material
from gmt_ase.training.spread_data import collect

THRESHOLDS = {"k_vrh": 150.0, "g_vrh": 80.0, "eps_electronic_mean": 8.0, "eps_total_mean": 20.0, "eij_max": 1.0}
BUDGETS = (0.05, 0.10, 0.20)
NAMES = (*INVARIANTS, "eij_max")
OFFSETS = {**INVARIANTS, "eij_max": 0.0}
_Z95 = 1.959963984540054


def _collect(model: str, data_dir: str) -> dict[str, np.ndarray]:
    """Test-split predictions, log-sigmas (per crystal where calibrated so), DFT values and crystal systems."""
    predictor = TensorPredictor.from_checkpoint(model, device="cpu")
    calibration = predictor.calibration
    if calibration is None:
        raise SystemExit(f"model {model!r} carries no uncertainty calibration")
    data = collect(predictor, split_by_material(load_records(data_dir))["test"])
    names = list(INVARIANTS)
    n = len(data["pred"])
    spread = calibration.get("crystal_spread")
    if spread is not None:
        values = {name: data["pred"][:, j] for j, name in enumerate(names)}
        members = {name: data["members"][:, :, j] for j, name in enumerate(names)} if len(data["members"]) else None
        sigmas = spread.log_sigmas(values, members, data["descriptors"], data["numbers"])
    else:
        sigmas = {name: np.full(n, calibration["log_sigma"][name]) for name in names}
    return {
        "pred": np.column_stack([data["pred"], data["eij_max"]]),
        "true": np.column_stack([data["true"], data["eij_max_true"]]),
        "log_sigma": np.column_stack([sigmas[name] for name in names] + [sigmas["piezo_norm"]]),
        "system": np.array([crystal_system(int(sg)) if sg else "unknown" for sg in data["space_group"]]),
        "per_crystal": spread is not None,
    }


def _scores(pred: np.ndarray, true: np.ndarray, log_sigma: np.ndarray, offset: float) -> dict[str, float]:
    log_error = np.abs(np.log(pred - offset) - np.log(true - offset))
    std = (pred - offset) * log_sigma
    return {
        "n": int(len(pred)),
        "coverage_68": float((log_error <= log_sigma).mean()),
        "coverage_95": float((log_error <= _Z95 * log_sigma).mean()),
        "spearman_relative": float(spearmanr(std / pred, np.abs(pred - true) / pred).statistic),
        "spearman_std_vs_abs_error": float(spearmanr(std, np.abs(pred - true)).statistic),
    }


def coverage(arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Interval coverage and Spearman correlations per invariant, overall and per crystal system."""
    out = {}
    for j, name in enumerate(NAMES):
        offset = OFFSETS[name]
        pred, true, sigma = arrays["pred"][:, j], arrays["true"][:, j], arrays["log_sigma"][:, j]
        ok = np.isfinite(true) & (true > offset) & (pred > offset)
        entry = _scores(pred[ok], true[ok], sigma[ok], offset)
        systems = arrays["system"][ok]
        entry["by_crystal_system"] = {
            system: _scores(
                pred[ok][systems == system], true[ok][systems == system], sigma[ok][systems == system], offset
            )
            for system in sorted(set(systems))
            if (systems == system).sum() >= 5
        }
        out[name] = entry
    return out


def exceedance(pred: np.ndarray, log_sigma: np.ndarray, threshold: float, offset: float) -> np.ndarray:
    """P(value > threshold) under the calibrated log-normal distribution (a step where sigma is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.log(np.clip(pred - offset, 1e-12, None)) - np.log(threshold - offset)) / log_sigma
    return np.where(log_sigma > 0, norm.cdf(z), (pred > threshold).astype(float))


def prescreen(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Recall of true hits at DFT budgets, ranking by mean or by P(value > threshold); expected vs found hits."""
    out = {}
    for name, threshold in THRESHOLDS.items():
        j = NAMES.index(name)
        pred, true, sigma = arrays["pred"][:, j], arrays["true"][:, j], arrays["log_sigma"][:, j]
        ok = np.isfinite(true)
        pred, true, sigma = pred[ok], true[ok], sigma[ok]
        hits = true > threshold
        probability = exceedance(pred, sigma, threshold, OFFSETS[name])
        result = {"n": int(len(true)), "hits": int(hits.sum()), "expected_hits_all": float(probability.sum())}
        for budget in BUDGETS:
            k = max(1, round(budget * len(true)))
            tag = f"@{int(budget * 100)}%"
            for label, score in (("mean", pred), ("P(>t)", probability + 1e-9 * pred)):
                chosen = np.argsort(-score)[:k]
                result[f"{label} {tag}"] = float(hits[chosen].sum() / max(hits.sum(), 1))
                result[f"{label} {tag} found"] = int(hits[chosen].sum())
                result[f"{label} {tag} expected"] = float(probability[chosen].sum())
            result[f"random {tag}"] = budget
        out[f"{name} > {threshold:g}"] = result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/uncertainty_calibration.json")
    args = parser.parse_args()
    arrays = _collect(args.model, args.data_dir)
    report = {
        "model": args.model,
        "per_crystal_spread": arrays["per_crystal"],
        "coverage": coverage(arrays),
        "prescreen": prescreen(arrays),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
