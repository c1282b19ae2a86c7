"""Can a model of the trees' own errors rank them? (issue 21, a measurement for the next step, not shipped).

The per-crystal spread ranks the relative errors of K and eps_inf (Spearman >= 0.3 on test) but not those of
G and eps_total. Its weights are fitted on the validation split only (400 elastic, 97 dielectric crystals),
too few to learn where the trees err. This script learns it from the training split instead: 5-fold
out-of-fold predictions of each invariant's trees give a residual for every training crystal; a LightGBM
model of ``log(|residual| + 0.02)`` on the descriptors and the out-of-fold prediction is then scored on the
validation split against the errors of the early-stopped trees of a ``train_invariants`` folder (never the
test split). Usage::

    python benchmarks/error_model_feasibility.py runs/inv          # the folder of features.npz and the model
    python benchmarks/error_model_feasibility.py runs/inv --model early.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from gmt_ase.invariant.error_model import ERROR_FLOOR
from gmt_ase.invariant.invariant_model import INVARIANTS, InvariantModel
from gmt_ase.training.error_model_fit import out_of_fold

#: The measurement's own error-tree settings (no depth limit); the shipped ones are error_model_fit.ERROR_PARAMS.
_ERROR_PARAMS = {"objective": "regression_l1", "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 30,
                 "feature_fraction": 0.5, "bagging_fraction": 0.8, "bagging_freq": 1, "verbose": -1, "seed": 0}


def main() -> int:
    """Print, per invariant, the validation Spearman of the error model's score with the trees' |log error|."""
    import lightgbm as lgb

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="train_invariants folder (features.npz, invariant_model.json)")
    parser.add_argument("--model", type=Path, help="invariant model JSON (default: the folder's)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = InvariantModel.from_dict(json.loads((args.model or args.folder / "invariant_model.json").read_text()))
    with np.load(args.folder / "features.npz", allow_pickle=False) as stored:
        data = dict(stored)
    x, split = model.columns(data["descriptors"]), data["split"]
    for j, (name, offset) in enumerate(INVARIANTS.items()):
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(data["truth"][:, j] - offset)
        train, val = (np.flatnonzero((split == s) & np.isfinite(y)) for s in ("train", "val"))
        oof = out_of_fold(x[train], y[train], args.folds, args.threads)
        val_pred = model.tree_values(model.targets[name], x[val])
        target = np.log(np.abs(oof - y[train]) + ERROR_FLOOR)
        error_model = lgb.train({**_ERROR_PARAMS, "num_threads": args.threads},
                                lgb.Dataset(np.column_stack([x[train], oof]), target), num_boost_round=400)
        score = error_model.predict(np.column_stack([x[val], val_pred]))
        rho = spearmanr(score, np.abs(val_pred - y[val])).correlation
        print(f"{name}: {len(train)} out-of-fold training residuals, "
              f"validation Spearman {rho:.2f} ({len(val)} crystals)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
