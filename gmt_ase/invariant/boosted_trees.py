"""Gradient-boosted regression trees as plain arrays: safe text storage and vectorised NumPy prediction.

Trees are trained with LightGBM (a training-time dependency only) and converted by :func:`from_lightgbm`
into flat node arrays that serialise as JSON: no pickle anywhere, and prediction needs nothing but NumPy.

Node convention: ``feature[k] >= 0`` is a split node that sends a sample to ``left[k]`` when
``x[feature[k]] <= threshold[k]`` and to ``right[k]`` otherwise; ``feature[k] == -1`` is a leaf with
output ``value[k]``. A model's prediction is the sum of its trees' leaf values (LightGBM folds the
learning rate and the initial score into the leaves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TreeEnsemble", "from_lightgbm"]


@dataclass(frozen=True)
class TreeEnsemble:
    """A sum of regression trees stored as flat arrays (see the module docstring).

    Attributes
    ----------
    feature
        (nodes,) int64 split feature, -1 for leaves.
    threshold
        (nodes,) float64 split threshold.
    left, right
        (nodes,) int64 child node indices (unused for leaves).
    value
        (nodes,) float64 leaf values (unused for split nodes).
    roots
        (trees,) int64 root node of each tree.
    n_features
        Length of the input vectors.
    """

    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray
    n_features: int

    def __post_init__(self) -> None:
        n = len(self.feature)
        if not all(len(a) == n for a in (self.threshold, self.left, self.right, self.value)):
            raise ValueError("tree arrays must all have one entry per node")
        split = self.feature >= 0
        children = np.concatenate([self.left[split], self.right[split], self.roots])
        if children.size and (children.min() < 0 or children.max() >= n):
            raise ValueError("tree child or root index out of range")
        if np.any(self.feature >= self.n_features):
            raise ValueError(f"tree splits on a feature beyond the {self.n_features} inputs")

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Sum of the trees' outputs for each row of an (N, n_features) array."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(f"expected an (N, {self.n_features}) feature array, got shape {features.shape}")
        if not np.all(np.isfinite(features)):
            raise ValueError("features must be finite")
        rows = np.arange(len(features))[:, None]
        node = np.broadcast_to(self.roots, (len(features), len(self.roots))).copy()
        for _ in range(len(self.feature)):  # bounded by the node count; trees are shallow in practice
            feature = self.feature[node]
            active = feature >= 0
            if not active.any():
                break
            go_left = features[rows, np.where(active, feature, 0)] <= self.threshold[node]
            node = np.where(active, np.where(go_left, self.left[node], self.right[node]), node)
        else:
            raise ValueError("tree arrays contain a cycle")
        return self.value[node].sum(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "n_features": int(self.n_features),
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": self.threshold.tolist(),
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": self.value.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeEnsemble:
        """Inverse of :meth:`to_dict`."""
        return cls(
            feature=np.asarray(data["feature"], dtype=np.int64),
            threshold=np.asarray(data["threshold"], dtype=np.float64),
            left=np.asarray(data["left"], dtype=np.int64),
            right=np.asarray(data["right"], dtype=np.int64),
            value=np.asarray(data["value"], dtype=np.float64),
            roots=np.asarray(data["roots"], dtype=np.int64),
            n_features=int(data["n_features"]),
        )


def _flatten(node: dict[str, Any], arrays: dict[str, list]) -> int:
    """Append one LightGBM tree node (recursively) and return its index."""
    index = len(arrays["feature"])
    for key in arrays:
        arrays[key].append(0)
    if "leaf_value" in node:
        arrays["feature"][index] = -1
        arrays["value"][index] = float(node["leaf_value"])
        return index
    if node.get("decision_type", "<=") != "<=":
        raise ValueError(f"unsupported LightGBM split {node.get('decision_type')!r} (categorical features)")
    if node.get("missing_type", "None") not in ("None", "NaN"):
        raise ValueError(f"unsupported LightGBM missing-value handling {node.get('missing_type')!r}")
    arrays["feature"][index] = int(node["split_feature"])
    arrays["threshold"][index] = float(node["threshold"])
    arrays["left"][index] = _flatten(node["left_child"], arrays)
    arrays["right"][index] = _flatten(node["right_child"], arrays)
    return index


def from_lightgbm(booster: Any) -> TreeEnsemble:
    """Convert a trained ``lightgbm.Booster`` (numeric features, no missing values) to a :class:`TreeEnsemble`."""
    dump = booster.dump_model()
    arrays: dict[str, list] = {"feature": [], "threshold": [], "left": [], "right": [], "value": []}
    roots = [_flatten(tree["tree_structure"], arrays) for tree in dump["tree_info"]]
    return TreeEnsemble.from_dict({**arrays, "roots": roots, "n_features": int(dump["max_feature_idx"]) + 1})
