"""The floor every model must clear: a composition descriptor baseline beside the shipped models.

Baseline (issue 9, DESIGN.md section 7): per crystal, mean/std/min/max over sites of 9 element
properties (Z, row, group, electronegativity, atomic radius, mass, Mendeleev number, molar volume,
melting point) plus volume per atom, density and number of sites (39 numbers);
scikit-learn ``HistGradientBoostingRegressor(max_iter=600, learning_rate=0.05, l2_regularization=1.0)``
on log K_VRH, log G_VRH, log(eps_inf - 1), log(eps_total - 1) and log |e|, trained on the train split.

Scored on the validation and test splits, side by side with the shipped models (batched API):

- K_VRH / G_VRH MAE (GPa), separately for full elastic tensors and for the K/G-only binaries;
- share of crystals whose mean eps_inf / mean eps_total is within 25 % of DFT;
- share of non-zero piezo tensors whose Frobenius norm is within 25 % of DFT.

Needs scikit-learn (``pip install scikit-learn``). Run from the repository root::

    python benchmarks/baseline_descriptors.py [--models default fast] [--out benchmarks/results/baseline.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.invariant.descriptors import element_table_from_pymatgen
from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.training.data import load_records, split_by_material
from gmt_ase.training.train_invariants import record_invariants

TENSOR_FIELDS = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")

BASELINE_PROPERTIES = ("Z", "row", "group", "X", "atomic_radius", "atomic_mass", "mendeleev_no",
                       "molar_volume", "melting_point")
INVARIANT_NAMES = tuple(INVARIANTS)
SPLITS = ("val", "test")


def baseline_features(structure, table) -> np.ndarray:
    """The 39 baseline numbers of one pymatgen structure."""
    numbers = np.array(structure.atomic_numbers)
    columns = [table.names.index(name) for name in BASELINE_PROPERTIES]
    props = table.values[numbers][:, columns]
    stats = np.stack([props.mean(0), props.std(0), props.min(0), props.max(0)], axis=1).ravel()
    return np.concatenate([stats, [structure.volume / len(numbers), structure.density, len(numbers)]])


def score(pred: np.ndarray, true: np.ndarray, name: str, full: np.ndarray) -> dict[str, float]:
    """Metrics of one invariant on the records where both values are finite."""
    ok = np.isfinite(pred) & np.isfinite(true)
    if name in ("k_vrh", "g_vrh"):
        error = np.abs(pred - true)
        return {
            "mae_full_tensors": float(error[ok & full].mean()),
            "n_full_tensors": int((ok & full).sum()),
            "mae_binaries": float(error[ok & ~full].mean()),
            "n_binaries": int((ok & ~full).sum()),
        }
    relative = np.abs(pred[ok] - true[ok]) / np.abs(true[ok])
    return {"within_25_percent": float((relative < 0.25).mean()), "n": int(ok.sum())}


def fit_baseline(features: np.ndarray, truth: np.ndarray, train: np.ndarray) -> dict[str, np.ndarray]:
    """Train one HGB per invariant on log targets; predictions for every record."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    out = {}
    for j, name in enumerate(INVARIANT_NAMES):
        y = np.log(np.clip(truth[:, j] - INVARIANTS[name], 1e-12, None))
        rows = train & np.isfinite(truth[:, j]) & (truth[:, j] > INVARIANTS[name])
        model = HistGradientBoostingRegressor(max_iter=600, learning_rate=0.05, l2_regularization=1.0,
                                              random_state=0)
        model.fit(features[rows], y[rows])
        out[name] = INVARIANTS[name] + np.exp(model.predict(features))
    return out


def model_invariants(model: str, structures: list) -> tuple[np.ndarray, float]:
    """Invariants of a shipped model's predictions (NaN for failures) and its throughput."""
    from gmt_ase import GMTCalculator

    calc = GMTCalculator(model=model)
    start = time.perf_counter()
    results = calc.predict(structures, batch_size=64)
    rate = len(structures) / (time.perf_counter() - start)
    rows = []
    for result in results:
        if not result.ok:
            rows.append([np.nan] * len(INVARIANT_NAMES))
            continue
        inv = network_invariants({name: voigt_to_full(getattr(result, name)) for name in TENSOR_FIELDS})
        rows.append([inv[name] for name in INVARIANT_NAMES])
    return np.array(rows), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--models", nargs="*", default=["default", "fast"])
    parser.add_argument("--out", default="benchmarks/results/baseline_descriptors.json")
    args = parser.parse_args()

    records = load_records(args.data_dir)
    split_of = {id(r): name for name, rs in split_by_material(records).items() for r in rs}
    split = np.array([split_of[id(r)] for r in records])
    table = element_table_from_pymatgen()
    features = np.stack([baseline_features(r.structure, table) for r in records])
    truth = np.array([list(record_invariants(r.targets).values()) for r in records])  # INVARIANTS order
    full = np.array(["elastic" in r.targets for r in records])
    baseline = fit_baseline(features, truth, split == "train")

    # the shipped trees are refit on train + val: the same data for the baseline, scored on test
    baseline_train_val = fit_baseline(features, truth, np.isin(split, ("train", "val")))

    report: dict = {"baseline": {}, "baseline_train_val": {}, "models": {}}
    evaluated = np.isin(split, SPLITS)
    for s in SPLITS:
        rows = split == s
        report["baseline"][s] = {
            n: score(baseline[n][rows], truth[rows, j], n, full[rows]) for j, n in enumerate(INVARIANT_NAMES)
        }
    rows = split == "test"
    report["baseline_train_val"]["test"] = {
        n: score(baseline_train_val[n][rows], truth[rows, j], n, full[rows]) for j, n in enumerate(INVARIANT_NAMES)
    }
    for model in args.models:
        preds, rate = model_invariants(model, [r.structure for r, keep in zip(records, evaluated, strict=True) if keep])
        all_preds = np.full_like(truth, np.nan)
        all_preds[evaluated] = preds
        report["models"][model] = {"structures_per_second": rate}
        for s in SPLITS:
            rows = split == s
            report["models"][model][s] = {
                n: score(all_preds[rows, j], truth[rows, j], n, full[rows]) for j, n in enumerate(INVARIANT_NAMES)
            }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))


def _cell(metrics: dict, name: str) -> str:
    m = metrics[name]
    if name in ("k_vrh", "g_vrh"):
        return f"{m['mae_full_tensors']:.2f} / {m['mae_binaries']:.2f}"
    return f"{m['within_25_percent']:.3f}"


def markdown(report: dict) -> str:
    """Side-by-side table (rows: invariants; columns: baseline and models per split)."""
    columns = [(f"{name} {s}", v[s]) for name, v in [("baseline", report["baseline"]), *report["models"].items()]
               for s in SPLITS]
    columns.insert(len(SPLITS), ("baseline (train+val) test", report["baseline_train_val"]["test"]))
    head = "| invariant | " + " | ".join(name for name, _ in columns) + " |"
    lines = [head, "|" + " --- |" * (1 + len(columns))]
    labels = {
        "k_vrh": "K_VRH MAE full / binaries (GPa)",
        "g_vrh": "G_VRH MAE full / binaries (GPa)",
        "eps_electronic_mean": "mean eps_inf within 25 %",
        "eps_total_mean": "mean eps_total within 25 %",
        "piezo_norm": "piezo norm within 25 % (non-zero)",
    }
    for name in INVARIANT_NAMES:
        cells = [_cell(metrics, name) for _, metrics in columns]
        lines.append(f"| {labels[name]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
