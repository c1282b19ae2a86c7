"""Fit the zero-pressure volume model of :mod:`gmt_ase.invariant.equilibrium_volume` and attach it.

``python -m gmt_ase.training.equilibrium_volume_fit runs/inv --model CK.pt --out OUT.pt`` reads the cached
descriptors of :mod:`gmt_ase.training.train_invariants` (``runs/inv/features.npz``: every record's relaxed
structure, so its volume is the DFT zero-pressure volume), trains LightGBM trees for
``log(V / V_elements)`` on the scale-free features, early-stopped on the validation split, and reports the
validation error of ``log V`` with hard and smooth splits. ``--refit`` trains again on train + val with the
early-stopped number of rounds (the shipped models' trees are refit the same way). The trees, their split
widths and ``--pressure-derivative`` are written into a copy of the checkpoint; calibrate afterwards (the
elastic invariants change).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gmt_ase.inference.io import save_atomically
from gmt_ase.invariant.boosted_trees import TreeEnsemble, from_lightgbm
from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES
from gmt_ase.invariant.equilibrium_volume import FEATURE_NAMES, TARGET, EquilibriumVolume, scale_free_features
from gmt_ase.invariant.soft_trees import soft_predict
from gmt_ase.training.split_widths import descriptor_scales, split_widths

__all__ = ["DEFAULT_PRESSURE_DERIVATIVE", "fit_volume_trees", "main"]

#: K'0 of the shipped models (version 7). Validation split, `default` with trees trained on the training split,
#: K / G MAE (GPa) without the equation of state / K'0 = 3 / 3.25: K 9.91 / 10.52 / 10.79, G 15.24 / 15.25 /
#: 15.27, binaries K 10.51 / 11.01 / 11.38. Every unit above the trees' own cross-material slope (about 2)
#: costs accuracy on relaxed crystals in proportion to the volume model's error (3 % in volume), so the
#: issue's lowest K' (3-6) is aimed at; 3.25 rather than 3 because the network's own K (blend weight 0.15)
#: adds its slope: with 3, `fast` gave NaCl K' = 2.97. Real crystals have 4-5.
DEFAULT_PRESSURE_DERIVATIVE = 3.25
#: LightGBM settings (depth 8 at most: the smooth evaluation's limit).
_PARAMETERS = {
    "learning_rate": 0.05, "num_leaves": 31, "max_depth": 8, "min_child_samples": 10, "subsample": 0.8,
    "subsample_freq": 1, "colsample_bytree": 0.7, "verbose": -1,
}


def _arrays(features_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale-free features, ``log(V / V_elements)`` and split labels of the cached records."""
    data = np.load(features_file, allow_pickle=False)
    if tuple(str(n) for n in data["descriptor_names"]) != DESCRIPTOR_NAMES:
        raise SystemExit(f"{features_file} was written with other descriptors; run train_invariants again")
    descriptors = data["descriptors"]
    target = np.log(descriptors[:, DESCRIPTOR_NAMES.index(TARGET)])
    return scale_free_features(descriptors), target, np.asarray(data["split"]).astype(str)


def fit_volume_trees(
    features: np.ndarray, target: np.ndarray, train: np.ndarray, val: np.ndarray | None, rounds: int = 5000,
    threads: int = 1,
) -> tuple[TreeEnsemble, int]:
    """LightGBM trees for ``target``; early-stopped on ``val`` when given. Returns the trees and their rounds."""
    import lightgbm as lgb  # training-time dependency only

    model = lgb.LGBMRegressor(n_estimators=rounds, n_jobs=threads, random_state=0, **_PARAMETERS)
    if val is None:
        model.fit(features[train], target[train])
        return from_lightgbm(model.booster_), rounds
    model.fit(features[train], target[train], eval_set=[(features[val], target[val])],
              callbacks=[lgb.early_stopping(200, verbose=False)])
    best = int(model.best_iteration_)  # the early-stopped trees, as train_invariants keeps them
    return from_lightgbm(lgb.Booster(model_str=model.booster_.model_to_string(num_iteration=best))), best


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Fit and attach the zero-pressure volume model.")
    parser.add_argument("folder", type=Path, help="train_invariants output folder with features.npz")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint with an invariant model")
    parser.add_argument("--out", type=Path, required=True, help="the checkpoint copy to write")
    parser.add_argument("--refit", action="store_true", help="train on train + val with the early-stopped rounds")
    parser.add_argument("--pressure-derivative", type=float, default=DEFAULT_PRESSURE_DERIVATIVE)
    parser.add_argument("--alpha", type=float, default=0.05, help="split half width in feature std")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    features, target, split = _arrays(args.folder / "features.npz")
    train, val = split == "train", split == "val"
    trees, rounds = fit_volume_trees(features, target, train, val, threads=args.threads)
    widths = split_widths(FEATURE_NAMES, descriptor_scales(features[train]), args.alpha)
    hard = np.mean(np.abs(trees.predict(features[val]) - target[val]))
    soft = np.mean(np.abs(soft_predict(trees, features[val], widths) - target[val]))
    print(f"log V on validation ({val.sum()} records, {rounds} rounds): MAE {hard:.4f} hard, {soft:.4f} smooth")
    if args.refit:
        trees, _ = fit_volume_trees(features, target, train | val, None, rounds, threads=args.threads)
        print(f"refit on train + val ({(train | val).sum()} records)")
    volume = EquilibriumVolume(trees, widths, args.pressure_derivative)
    payload = torch.load(args.model, map_location="cpu", weights_only=True)
    if "invariant_model" not in payload:
        raise SystemExit(f"{args.model} has no invariant model")
    save_atomically({**payload, "equilibrium_volume": volume.to_dict(binary=True)}, args.out)
    print(f"equilibrium volume (K'0 = {args.pressure_derivative}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
