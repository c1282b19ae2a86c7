"""Smooth evaluation of boosted trees: every split a C2 step of finite width instead of a jump.

A tree ensemble is piecewise constant in its inputs, so a prediction jumps when a descriptor crosses a
threshold: under a 0.25 % strain, a 0.003 A rattle, or the 1e-16 rounding that separates two ways of
writing the same crystal. Here a split sends a sample left with probability
``S((threshold - x) / (2 w) + 1/2)``, ``S`` the C2 smooth step of :func:`gmt_ase.invariant.descriptors.smooth_step`
and ``w`` the feature's half width, and a tree's output is the sum of its leaf values weighted by the
probability of reaching each leaf. Further than ``w`` from every threshold on its path a sample reaches
exactly one leaf, so the smooth trees equal the hard ones there (and are evaluated like them: only the
(sample, tree) pairs that meet a split within its window take the full weighted sum).
"""

from __future__ import annotations

import numpy as np

from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.descriptors import smooth_step

__all__ = ["soft_predict"]

#: Rows x trees walked at once (bounds the temporary arrays).
_BLOCK = 1 << 20


def _left_probability(x: np.ndarray, threshold: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Probability of going left at splits with the given thresholds and half widths."""
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (threshold - x) / (2.0 * width) + 0.5
    return smooth_step(np.nan_to_num(z, nan=1.0, posinf=1.0, neginf=0.0))


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
    n_rows, (n_trees, n_splits) = len(features), layout.feature.shape
    tree = np.arange(n_trees)[None, :]
    heap = np.zeros((n_rows, n_trees), dtype=np.int64)
    soft = np.zeros((n_rows, n_trees), dtype=bool)
    for _ in range(layout.depth):  # the hard walk, noting pairs that pass a split within its window
        feature, threshold = layout.feature[tree, heap], layout.threshold[tree, heap]
        x = np.take_along_axis(features, feature, axis=1)
        soft |= np.abs(x - threshold) < widths[feature]
        heap = 2 * heap + 1 + (x > threshold)
    out = layout.leaf[tree, heap - n_splits]  # (rows, trees) the hard leaves
    rows, trees = np.nonzero(soft)
    if rows.size:
        out[rows, trees] = _weighted_leaves(layout, features[rows], trees, widths)
    return out.sum(axis=1)


def _weighted_leaves(layout: object, x: np.ndarray, trees: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Probability-weighted leaf sum of one tree per row (K rows)."""
    feature, threshold = layout.feature[trees], layout.threshold[trees]  # (K, n_splits)
    left = _left_probability(np.take_along_axis(x, feature, axis=1), threshold, widths[feature])
    reach = np.ones((len(trees), 1))
    for level in range(layout.depth):
        start = 2**level - 1
        p = left[:, start : 2 * start + 1]  # (K, 2**level) the level's nodes, left to right
        reach = np.stack([reach * p, reach * (1.0 - p)], axis=-1).reshape(len(trees), -1)
    return np.einsum("kl,kl->k", reach, layout.leaf[trees])
