"""A learned model of the invariant trees' own errors: where in descriptor space they tend to be wrong.

For each invariant of :data:`~gmt_ase.invariant.invariant_model.INVARIANTS`, smooth boosted trees map a
crystal's descriptors (the invariant model's columns) and its predicted ``log(value - offset)`` to a score,
the expected ``log(|log error| + ERROR_FLOOR)``. The trees are trained on out-of-fold residuals of the
training split (:mod:`gmt_ase.training.error_model_fit`): each training crystal's error is that of trees
which never saw it, so the score learns which kinds of crystal are hard from thousands of crystals rather
than from the few hundred of the validation split. The score is one feature of the per-crystal spread
(:mod:`gmt_ase.invariant.spread`), whose validation fit decides how much it counts.

Its splits are smooth (:func:`gmt_ase.invariant.soft_trees.soft_predict`) with the invariant model's split
widths, so the score is invariant and continuous in the crystal like the predictions. NumPy only; stored
as plain data inside the spread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gmt_ase.invariant.boosted_trees import TreeEnsemble
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.soft_trees import soft_predict

__all__ = ["ERROR_FLOOR", "FORMAT_VERSION", "ErrorModel"]

FORMAT_VERSION = 1
#: Added to ``|log error|`` before its log is learned (errors below ~2 % are all "small").
ERROR_FLOOR = 0.02


@dataclass(frozen=True)
class ErrorModel:
    """Per-invariant trees scoring how large the invariant model's log error is expected to be.

    Attributes
    ----------
    trees
        One :class:`~gmt_ase.invariant.boosted_trees.TreeEnsemble` per invariant name, reading
        ``[descriptors, log(value - offset)]`` (``n_descriptors + 1`` inputs).
    split_widths
        (n_descriptors + 1,) half widths of the smooth splits, in each input's units.
    """

    trees: Mapping[str, TreeEnsemble]
    split_widths: np.ndarray

    def __post_init__(self) -> None:
        unknown = set(self.trees) - set(INVARIANTS)
        if unknown:
            raise ValueError(f"error model for unknown invariants {sorted(unknown)}")
        widths = np.asarray(self.split_widths, dtype=np.float64)
        if widths.ndim != 1 or not np.all(widths > 0):
            raise ValueError("error-model split widths must be positive numbers")
        for name, trees in self.trees.items():
            if trees.n_features != len(widths):
                raise ValueError(f"error trees of {name!r} read {trees.n_features} inputs, widths give {len(widths)}")

    @property
    def n_descriptors(self) -> int:
        """Number of descriptor columns the trees read (besides the predicted value)."""
        return len(self.split_widths) - 1

    @cached_property
    def _widths(self) -> np.ndarray:
        return np.asarray(self.split_widths, dtype=np.float64)

    def score(self, name: str, descriptors: np.ndarray, log_value: np.ndarray) -> np.ndarray:
        """(N,) expected ``log(|log error| + ERROR_FLOOR)`` of invariant ``name``, zeros without its trees.

        Parameters
        ----------
        name
            Invariant name.
        descriptors
            (N, n_descriptors) the invariant model's descriptor columns.
        log_value
            (N,) predicted ``log(value - offset)``.
        """
        descriptors = np.asarray(descriptors, dtype=np.float64)
        if descriptors.ndim != 2 or descriptors.shape[1] != self.n_descriptors:
            raise ValueError(f"expected (N, {self.n_descriptors}) descriptors, got {descriptors.shape}")
        if name not in self.trees:
            return np.zeros(len(descriptors))
        inputs = np.column_stack([descriptors, np.asarray(log_value, dtype=np.float64)])
        return soft_predict(self.trees[name], np.nan_to_num(inputs), self._widths)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (trees in the checkpoint's compact binary form)."""
        return {
            "format_version": FORMAT_VERSION,
            "split_widths": np.asarray(self.split_widths, dtype=np.float64).tolist(),
            "trees": {name: trees.to_dict(binary=True) for name, trees in self.trees.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorModel:
        """Inverse of :meth:`to_dict`."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"error-model format {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        return cls(
            trees={name: TreeEnsemble.from_dict(t) for name, t in data["trees"].items()},
            split_widths=np.asarray(data["split_widths"], dtype=np.float64),
        )
