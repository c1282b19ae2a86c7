"""Fit the error model of :mod:`gmt_ase.invariant.error_model` from out-of-fold residuals of the training split.

For each invariant, :func:`out_of_fold` trains the invariant model's kind of trees (:data:`LIGHTGBM_PARAMS`)
:data:`FOLDS` times, each on all training crystals but one fold, and predicts the held-out fold: every
training crystal gets the error of trees that never saw it. Smooth trees (:data:`ERROR_PARAMS`, at most
depth 6) then learn ``log(|residual| + ERROR_FLOOR)`` from the descriptors and the out-of-fold prediction.
The validation split is not used, so the spread fit (:mod:`gmt_ase.training.spread_fit`) can weigh the
score honestly on it. LightGBM is a training-time dependency only.

Measured first by ``benchmarks/error_model_feasibility.py`` (version 8 trees, validation split): the score
ranks the trees' errors with Spearman K 0.55, G 0.33, eps_inf 0.35, eps_total 0.52, piezo 0.26.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from gmt_ase.invariant.boosted_trees import from_lightgbm
from gmt_ase.invariant.error_model import ERROR_FLOOR, ErrorModel
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.training.train_invariants import LIGHTGBM_PARAMS

__all__ = ["ERROR_PARAMS", "FOLDS", "fit_error_model", "out_of_fold"]

FOLDS = 5
#: Settings of the error trees: depth 6 (the smooth evaluation allows 8), L1 loss (heavy-tailed errors).
ERROR_PARAMS: dict[str, Any] = {
    "objective": "regression_l1",
    "learning_rate": 0.03,
    "max_depth": 6,
    "num_leaves": 15,
    "min_data_in_leaf": 30,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "verbose": -1,
}
ERROR_ROUNDS = 400
#: Half width of the smooth splits on the predicted log value, in its standard deviations.
VALUE_WIDTH = 0.1
#: Fewer training crystals than this and an invariant gets no error trees (its score is zero).
MIN_CRYSTALS = 50


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: int = FOLDS, threads: int = 1, seed: int = 0) -> np.ndarray:
    """(N,) out-of-fold tree predictions of ``y`` from ``x`` (each fold's trees early-stopped on that fold)."""
    import lightgbm as lgb  # training-time dependency only

    fold = np.random.default_rng(seed).integers(0, folds, len(y))
    out = np.full(len(y), np.nan)
    for k in range(folds):
        fit, held = fold != k, fold == k
        if not held.any():
            continue
        booster = lgb.train(
            {**LIGHTGBM_PARAMS, "seed": seed, "num_threads": threads},
            lgb.Dataset(x[fit], y[fit]),
            num_boost_round=6000,
            valid_sets=[lgb.Dataset(x[held], y[held])],
            callbacks=[lgb.early_stopping(200, verbose=False)],
        )
        out[held] = booster.predict(x[held], num_iteration=booster.best_iteration)
    return out


def fit_error_model(
    descriptors: np.ndarray, truths: Mapping[str, np.ndarray], descriptor_widths: np.ndarray, threads: int = 1
) -> tuple[ErrorModel, dict[str, dict[str, float]]]:
    """Error trees per invariant from training crystals.

    Parameters
    ----------
    descriptors
        (N, D) the invariant model's descriptor columns of the training crystals.
    truths
        DFT invariants per name, (N,) each (NaN where a crystal has none).
    descriptor_widths
        (D,) the invariant model's split widths.
    threads
        LightGBM threads.

    Returns
    -------
    ErrorModel, dict
        The model and, per invariant, the number of crystals and their out-of-fold log-MAE.
    """
    import lightgbm as lgb  # training-time dependency only

    x = np.asarray(descriptors, dtype=np.float64)
    trees, summary, value_scales = {}, {}, []
    for name, offset in INVARIANTS.items():
        truth = np.asarray(truths[name], dtype=np.float64)
        rows = np.flatnonzero(np.isfinite(truth) & (truth > offset))
        if len(rows) < MIN_CRYSTALS:
            continue
        y = np.log(truth[rows] - offset)
        oof = out_of_fold(x[rows], y, threads=threads)
        inputs = np.column_stack([x[rows], oof])
        booster = lgb.train(
            {**ERROR_PARAMS, "seed": 0, "num_threads": threads},
            lgb.Dataset(inputs, np.log(np.abs(oof - y) + ERROR_FLOOR)),
            num_boost_round=ERROR_ROUNDS,
        )
        trees[name] = from_lightgbm(booster)
        value_scales.append(np.std(oof))
        summary[name] = {"n": len(rows), "out_of_fold_log_mae": float(np.mean(np.abs(oof - y)))}
    # one width for the value column (the invariants' log values have similar spreads: 0.5-1)
    value_width = VALUE_WIDTH * float(np.mean(value_scales)) if value_scales else VALUE_WIDTH
    widths = np.append(np.asarray(descriptor_widths, dtype=np.float64), value_width)
    return ErrorModel(trees, widths), summary
