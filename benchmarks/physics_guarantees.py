"""Print the physics-guarantee table (issue 19) for shipped models or checkpoints, side by side.

    python benchmarks/physics_guarantees.py                     # default and fast, beside version 5
    python benchmarks/physics_guarantees.py --models default runs/old_default.pt --json out.json

Version 5 cannot be loaded by this code (its trees read descriptors that are no longer computed), so its
column is the stored run ``benchmarks/results/physics_guarantees_v5.json`` (same checks, at commit fb6910f).

Checks (``gmt_ase.evaluation.guarantees``): invariance to how a crystal is written, rattled
centrosymmetric crystals, smoothness under strain, K' from the hydrostatic series, and the piezo
response of Ti off-centring in cubic BaTiO3.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gmt_ase.evaluation.guarantees import (
    invariance_checks,
    polar_distortion_series,
    rattle_checks,
    strain_checks,
)
from gmt_ase.predict import predict_tensors

REFERENCE = Path(__file__).parent / "results" / "physics_guarantees_v5.json"


def run(model: str) -> dict:
    """All checks for one model; returns counts, failures and K' values."""
    from gmt_ase.inference.cache import load_predictor

    load_predictor(model, "cpu")  # load once, outside the timings

    def predict(structures):
        return predict_tensors(structures, model=model, device="cpu", batch_size=64)

    start = time.perf_counter()
    invariance = invariance_checks(predict)
    rattle = rattle_checks(predict)
    smooth, derivative, k_primes = strain_checks(predict)
    polar = polar_distortion_series(predict)
    return {
        "model": model,
        "seconds": round(time.perf_counter() - start, 1),
        "checks": {r.name: {"passed": r.passed, "total": r.total, "failures": r.failures}
                   for r in (invariance, rattle, smooth, derivative)},
        "k_prime": k_primes,
        "batio3_piezo_norm_by_ti_shift": polar.tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "fast"])
    parser.add_argument("--json", help="write the full results (with every failure) here")
    parser.add_argument("--reference", default=str(REFERENCE), help="stored results printed beside ('' for none)")
    args = parser.parse_args()
    results = [run(model) for model in args.models]
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    if args.reference:
        with open(args.reference) as handle:
            results += json.load(handle)
    names = list(results[0]["checks"])
    print("| guarantee | " + " | ".join(r["model"] for r in results) + " |")
    print("| --- |" + " --- |" * len(results))
    for name in names:
        cells = [f"{r['checks'][name]['passed']} / {r['checks'][name]['total']}" for r in results]
        print(f"| {name} | " + " | ".join(cells) + " |")
    for r in results:
        kp = ", ".join(f"{k} {v:.1f}" for k, v in r["k_prime"].items())
        polar = ", ".join(f"{v:.3f}" for v in r["batio3_piezo_norm_by_ti_shift"])
        print(f"{r['model']}: K' {kp}; BaTiO3 |e| for Ti shifts 0..0.1 A: {polar} ({r['seconds']} s)")


if __name__ == "__main__":
    main()
