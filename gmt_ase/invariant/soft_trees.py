"""Smooth evaluation of boosted trees: every split a C2 step of finite width instead of a jump.

A tree ensemble is piecewise constant in its inputs, so a prediction jumps when a descriptor crosses a
threshold: under a 0.25 % strain, a 0.003 A rattle, or the 1e-16 rounding that separates two ways of
writing the same crystal. Here a split sends a sample left with probability
``S((threshold - x) / (2 w) + 1/2)``, ``S`` the C2 smooth step of :func:`gmt_ase.invariant.descriptors.smooth_step`
and ``w`` the feature's half width, and a tree's output is the sum of its leaf values weighted by the
probability of reaching each leaf. Further than ``w`` from every threshold on its path a sample reaches
exactly one leaf, so the smooth trees equal the hard ones there; they are evaluated like them, by walkers
that branch only at splits within their window.
"""

from __future__ import annotations

import numpy as np

from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import smooth_step

__all__ = ["soft_predict"]

#: Rows x trees walked at once (bounds the temporary arrays).
_BLOCK = 1 << 20


def _left_probability(x: np.ndarray, threshold: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Probability of going left at splits with the given thresholds and half widths.

    Padding splits have an infinite threshold: ``z`` is then ``+inf`` and the step exactly 1 (``x`` is finite).
    """
    return smooth_step((threshold - x) / (2.0 * width) + 0.5)


def soft_predict(ensemble: TreeEnsemble, features: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Smooth sum of the trees' outputs for each row of an (N, n_features) array.

    Parameters
    ----------
    ensemble
        Trees no deeper than 8 levels.
    features
        (N, n_features) finite inputs.
    widths
        (n_features,) positive half widths of the splits on each feature.

    Returns
    -------
    numpy.ndarray
        (N,) predictions, continuous (C2) in the features.
    """
    features = np.asarray(features, dtype=np.float64)
    widths = np.asarray(widths, dtype=np.float64)
    if widths.shape != (ensemble.n_features,) or not np.all(widths > 0):
        raise ValueError(f"widths must be {ensemble.n_features} positive numbers, got shape {widths.shape}")
    if features.ndim != 2 or features.shape[1] != ensemble.n_features or not np.all(np.isfinite(features)):
        raise ValueError(f"expected a finite (N, {ensemble.n_features}) feature array, got shape {features.shape}")
    layout = ensemble.complete_layout
    if layout is None:
        raise ValueError("smooth evaluation needs trees of depth <= 8")
    block = max(1, _BLOCK // max(len(layout.leaf), 1))
    parts = [_soft_block(layout, features[i : i + block], widths) for i in range(0, len(features), block)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _soft_block(layout: object, features: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Row sums of the smooth trees: walkers branch only at splits within their window.

    Every (row, tree) pair starts one walker of weight 1 at the root; at a split a walker goes left with
    weight ``w p`` and right with ``w (1 - p)``, and a branch of weight zero is dropped (``p`` is exactly 0
    or 1 outside the window), so the sum of leaf values times weights is the probability-weighted sum over
    all leaves at the cost of the hard walk plus the few branches near a threshold.
    """
    n_rows, (n_trees, n_splits) = len(features), layout.feature.shape
    n_features = features.shape[1]
    flat_features, flat_split, flat_threshold = features.ravel(), layout.feature.ravel(), layout.threshold.ravel()
    row = np.repeat(np.arange(n_rows), n_trees)
    tree = np.tile(np.arange(n_trees), n_rows)
    heap = np.zeros(n_rows * n_trees, dtype=np.int64)
    weight = np.ones(n_rows * n_trees)
    for _ in range(layout.depth):
        node = tree * n_splits + heap  # flat indices: np.take is faster than 2-d fancy indexing
        feature = np.take(flat_split, node)
        x = np.take(flat_features, row * n_features + feature)
        left = _left_probability(x, np.take(flat_threshold, node), np.take(widths, feature))
        go_left, go_right = left > 0.0, left < 1.0
        if not (go_left & go_right).any():  # every walker on a sure path: the hard step
            heap = 2 * heap + 1 + go_right
            continue
        row = np.concatenate([row[go_left], row[go_right]])
        tree = np.concatenate([tree[go_left], tree[go_right]])
        weight = np.concatenate([weight[go_left] * left[go_left], weight[go_right] * (1.0 - left[go_right])])
        heap = np.concatenate([2 * heap[go_left] + 1, 2 * heap[go_right] + 2])
    values = np.take(layout.leaf.ravel(), tree * (n_splits + 1) + heap - n_splits) * weight
    return np.bincount(row, weights=values, minlength=n_rows)
