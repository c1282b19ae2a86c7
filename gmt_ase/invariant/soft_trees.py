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

    Every (row, tree) pair starts one walker of weight 1 at the root. A walker further than the half width
    from a split's threshold takes the hard step in place (two comparisons with the window's edges, no
    arithmetic); one inside the window goes left with weight ``w p`` and leaves a new walker going right with
    weight ``w (1 - p)``. The new walkers are few and are walked alongside, so the sum of leaf values times
    weights is the probability-weighted sum over all leaves at the cost of the hard walk.
    """
    n_rows, (n_trees, n_splits) = len(features), layout.feature.shape
    flat_features, flat_split, threshold = features.ravel(), layout.feature.ravel(), layout.threshold.ravel()
    half = np.take(widths, flat_split)
    low, high = threshold - half, threshold + half  # padding: +inf, sure left
    tree = np.tile(np.arange(n_trees), n_rows)
    main = _Walkers(tree * n_splits, np.repeat(np.arange(n_rows) * features.shape[1], n_trees),
                    np.zeros(n_rows * n_trees, dtype=np.int64), None)
    spawned = _Walkers.empty()
    for _ in range(layout.depth):
        new_from_main = main.step(flat_split, flat_features, low, high, threshold, half)
        new_from_spawned = spawned.step(flat_split, flat_features, low, high, threshold, half)
        spawned = _Walkers.concatenate([spawned, new_from_main, new_from_spawned])
    leaf = layout.leaf.ravel()
    values = np.take(leaf, main.base + main.base // n_splits + main.heap - n_splits)
    if main.weight is not None:
        values = values * main.weight
    sums = values.reshape(n_rows, n_trees).sum(axis=1)
    if len(spawned.heap):
        extra = np.take(leaf, spawned.base + spawned.base // n_splits + spawned.heap - n_splits) * spawned.weight
        sums += np.bincount(spawned.offset // features.shape[1], weights=extra, minlength=n_rows)
    return sums


class _Walkers:
    """Walkers through padded complete trees.

    Each has a flat node base (``tree * n_splits``), a row offset into the flattened features
    (``row * n_features``), a heap position and a weight (``weight`` ``None``: all 1).
    """

    def __init__(self, base: np.ndarray, offset: np.ndarray, heap: np.ndarray, weight: np.ndarray | None) -> None:
        self.base, self.offset, self.heap, self.weight = base, offset, heap, weight

    @classmethod
    def empty(cls) -> _Walkers:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list[_Walkers]) -> _Walkers:
        parts = [p for p in parts if len(p.heap)]
        if len(parts) <= 1:
            return parts[0] if parts else cls.empty()
        return cls(*(np.concatenate([getattr(p, key) for p in parts]) for key in ("base", "offset", "heap", "weight")))

    def step(self, split: np.ndarray, features: np.ndarray, low: np.ndarray, high: np.ndarray,
             threshold: np.ndarray, half: np.ndarray) -> _Walkers:
        """Move every walker one level down, in place; return the walkers that branched off to the right."""
        if not len(self.heap):
            return _Walkers.empty()
        node = self.base + self.heap
        x = np.take(features, self.offset + np.take(split, node))
        some_left, some_right = x < np.take(high, node), x > np.take(low, node)
        both = np.flatnonzero(some_left & some_right)
        self.heap = 2 * self.heap + 2 - some_left  # sure right -> 2; left or branching -> 1
        if not len(both):
            return _Walkers.empty()
        at = node[both]
        left = _left_probability(x[both], np.take(threshold, at), np.take(half, at))
        if self.weight is None:
            self.weight = np.ones(len(self.heap))
        weight = self.weight[both]
        self.weight[both] = weight * left
        return _Walkers(self.base[both], self.offset[both], self.heap[both] + 1, weight * (1.0 - left))
