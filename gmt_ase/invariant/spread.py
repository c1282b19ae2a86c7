"""Per-crystal spreads: a log-normal sigma for each invariant that grows where the model is on thin ice.

For each invariant of :data:`~gmt_ase.invariant.invariant_model.INVARIANTS` the one-sigma of
``log(value - offset)`` is

    log sigma = intercept + sum_j weight_j * (feature_j - centre_j) / scale_j

with seven smooth, rotation- and cell-invariant features of the crystal (:data:`FEATURES`):

- ``member_spread``: standard deviation of the ensemble members' ``log(value - offset)`` (0 for one network);
- ``blend_shift``: ``|log(final - offset) - mean of the members' log(value - offset)|``, how far the invariant
  model (descriptor trees) moved the networks' value;
- ``distance``: distance to the training crystals of the invariant's family in a standardised, PCA-reduced
  descriptor space, the rank-weighted mean of the :data:`N_NEIGHBOURS` nearest (a continuous function of the
  descriptors: no jump when the nearest neighbour changes);
- ``rarity``: ``-log(1 + n)`` for the least common element of the crystal, ``n`` its number of training
  crystals in the family;
- ``log_value``: ``log(final - offset)`` (relative errors are larger for small values);
- ``log_g_over_k``: ``log(G_VRH / K_VRH)`` of the final prediction (Pugh's ratio: soft, nearly unstable
  crystals have the largest relative shear-modulus errors);
- ``error_score``: the learned error model's expected ``log(|log error| + 0.02)``
  (:mod:`gmt_ase.invariant.error_model`: smooth trees trained on out-of-fold residuals of the training
  split, which know which kinds of crystal the trees get wrong; 0 without an error model).

All numbers are plain data in the checkpoint's ``"uncertainty"`` under ``"crystal_spread"`` (see
:meth:`CrystalSpread.to_dict`), fitted on the validation split by :mod:`gmt_ase.training.spread_fit`, which
also chose the descriptor columns that stay continuous under a 0.01 A rattle. NumPy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gmt_ase.invariant.error_model import ErrorModel
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.packed_arrays import pack_arrays, unpack_arrays

__all__ = ["FAMILY_OF", "FEATURES", "FORMAT_VERSION", "N_NEIGHBOURS", "CrystalSpread", "SpreadModel"]

#: 2: the seventh feature ``error_score`` and the error model (version 9).
FORMAT_VERSION = 2
FEATURES = ("member_spread", "blend_shift", "distance", "rarity", "log_value", "log_g_over_k", "error_score")
#: Training family whose crystals and element counts an invariant's distance and rarity use.
FAMILY_OF: Mapping[str, str] = {
    "k_vrh": "elastic",
    "g_vrh": "elastic",
    "eps_electronic_mean": "dielectric",
    "eps_total_mean": "dielectric",
    "piezo_norm": "piezoelectric",
}
FAMILIES = ("dielectric", "piezoelectric", "elastic")
N_NEIGHBOURS = 8
#: Standardised descriptors are clipped here (continuously) so one wild column cannot dominate a distance.
Z_CLIP = 8.0
#: log sigma never leaves [intercept - LOG_RANGE, intercept + LOG_RANGE] (smoothly, by tanh).
LOG_RANGE = 2.5
_EPS = 1e-12


@dataclass(frozen=True)
class SpreadModel:
    """The log-sigma model of one invariant: an intercept and weights on standardised features."""

    intercept: float
    centre: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F,)

    def log_sigma(self, features: np.ndarray) -> np.ndarray:
        """(N,) log sigma of (N, F) features, kept within :data:`LOG_RANGE` of the intercept by a tanh."""
        linear = ((np.asarray(features) - self.centre) / self.scale) @ self.weights
        return self.intercept + LOG_RANGE * np.tanh(linear / LOG_RANGE)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists of floats)."""
        return {
            "intercept": float(self.intercept),
            "centre": self.centre.tolist(),
            "scale": self.scale.tolist(),
            "weights": self.weights.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpreadModel:
        """Inverse of :meth:`to_dict`."""
        arrays = [np.asarray(data[k], dtype=np.float64) for k in ("centre", "scale", "weights")]
        if any(a.shape != (len(FEATURES),) for a in arrays) or not np.all(arrays[1] > 0):
            raise ValueError(f"a spread model needs {len(FEATURES)} centres, positive scales and weights")
        return cls(float(data["intercept"]), *arrays)


@dataclass(frozen=True)
class CrystalSpread:
    """Everything the per-crystal spread reads besides the prediction: reference crystals and element counts.

    Attributes
    ----------
    n_descriptors
        Number of the invariant model's descriptor columns (refuses descriptors of another model).
    keep
        Descriptor columns used in the distance (those continuous under a rattle).
    mean, std
        Standardisation of the kept columns.
    components
        (K, len(keep)) principal axes of the standardised training descriptors.
    reference
        (N, K) training crystals in that space; ``families`` (N,) bit masks (1 dielectric, 2 piezo, 4 elastic).
    element_counts
        Per family, (119,) training crystals holding each atomic number.
    models
        One :class:`SpreadModel` per invariant.
    error_model
        The learned error model of the ``error_score`` feature (``None``: the feature is 0).
    """

    n_descriptors: int
    keep: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray
    reference: np.ndarray
    families: np.ndarray
    element_counts: Mapping[str, np.ndarray]
    models: Mapping[str, SpreadModel]
    error_model: ErrorModel | None = None

    def __post_init__(self) -> None:
        if self.error_model is not None and self.error_model.n_descriptors != self.n_descriptors:
            raise ValueError(f"error model reads {self.error_model.n_descriptors} descriptors, "
                             f"the spread {self.n_descriptors}")

    def project(self, descriptors: np.ndarray) -> np.ndarray:
        """(N, K) coordinates of (N, n_descriptors) descriptor rows in the reference space."""
        descriptors = np.asarray(descriptors, dtype=np.float64)
        if descriptors.ndim != 2 or descriptors.shape[1] != self.n_descriptors:
            raise ValueError(f"expected (N, {self.n_descriptors}) descriptors, got {descriptors.shape}")
        z = (descriptors[:, self.keep] - self.mean) / self.std
        z = Z_CLIP * np.tanh(np.nan_to_num(z) / Z_CLIP)  # continuous clipping
        return z @ self.components.T

    def distances(self, points: np.ndarray, family: str) -> np.ndarray:
        """(N,) rank-weighted mean distance of projected points to their nearest reference crystals."""
        reference = self.reference[(self.families & (1 << FAMILIES.index(family))) > 0]
        k = min(N_NEIGHBOURS, len(reference))
        ranks = 1.0 / np.arange(1, k + 1)
        out = np.empty(len(points))
        for i, point in enumerate(points):
            d = np.sqrt(((reference - point) ** 2).sum(axis=1))
            nearest = np.sort(np.partition(d, k - 1)[:k])
            out[i] = nearest @ ranks / ranks.sum()
        return out / np.sqrt(self.reference.shape[1])

    def rarity(self, numbers: list[np.ndarray], family: str) -> np.ndarray:
        """(N,) ``-log(1 + training count)`` of each crystal's least common element in ``family``."""
        counts = self.element_counts[family]
        return np.array([-np.log1p(counts[np.unique(np.asarray(z, dtype=int))].min()) for z in numbers])

    def features(
        self,
        values: Mapping[str, np.ndarray],
        members: Mapping[str, np.ndarray] | None,
        descriptors: np.ndarray,
        numbers: list[np.ndarray],
    ) -> dict[str, np.ndarray]:
        """(N, F) features per invariant (:data:`FEATURES`).

        Parameters
        ----------
        values
            Final invariants, (N,) per name.
        members
            Members' invariants, (M, N) per name, or ``None`` for a single network.
        descriptors
            (N, n_descriptors) the invariant model's descriptors (``model.columns(model.all_descriptors(...))``).
        numbers
            Atomic numbers of each crystal.
        """
        points = self.project(descriptors)
        k_vrh, g_vrh = (np.clip(np.asarray(values[k], dtype=np.float64), _EPS, None) for k in ("k_vrh", "g_vrh"))
        pugh = np.log(g_vrh / k_vrh)
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        out = {}
        for name, offset in INVARIANTS.items():
            family = FAMILY_OF[name]
            if family not in cache:
                cache[family] = (self.distances(points, family), self.rarity(numbers, family))
            log_final = np.log(np.clip(np.asarray(values[name], dtype=np.float64) - offset, _EPS, None))
            spread = shift = np.zeros_like(log_final)
            if members is not None and len(members[name]) > 1:
                log_members = np.log(np.clip(np.asarray(members[name], dtype=np.float64) - offset, _EPS, None))
                spread = log_members.std(axis=0)
                shift = np.abs(log_final - log_members.mean(axis=0))
            score = (np.zeros_like(log_final) if self.error_model is None
                     else self.error_model.score(name, descriptors, log_final))
            out[name] = np.stack([spread, shift, *cache[family], log_final, pugh, score], axis=1)
        return out

    def log_sigmas(
        self,
        values: Mapping[str, np.ndarray],
        members: Mapping[str, np.ndarray] | None,
        descriptors: np.ndarray,
        numbers: list[np.ndarray],
    ) -> dict[str, np.ndarray]:
        """(N,) log-normal sigma per invariant (arguments as in :meth:`features`)."""
        features = self.features(values, members, descriptors, numbers)
        return {name: np.exp(self.models[name].log_sigma(f)) for name, f in features.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint (arrays as compressed bytes)."""
        arrays = {
            "keep": self.keep,
            "mean": self.mean,
            "std": self.std,
            "components": self.components,
            "reference": self.reference,
            "families": self.families,
            **{f"counts_{f}": self.element_counts[f] for f in FAMILIES},
        }
        return {
            "format_version": FORMAT_VERSION,
            "n_descriptors": int(self.n_descriptors),
            "shape": [int(s) for s in self.reference.shape],
            "arrays": pack_arrays(arrays, _DTYPES),
            "models": {name: model.to_dict() for name, model in self.models.items()},
            "error_model": None if self.error_model is None else self.error_model.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrystalSpread:
        """Inverse of :meth:`to_dict`; reads format 1 (six features, no error model) as an unused ``error_score``."""
        version = data.get("format_version")
        if version not in (1, FORMAT_VERSION):
            raise ValueError(f"crystal spread format {version!r}, expected {FORMAT_VERSION} (or 1)")
        models = data["models"]
        if version == 1:
            models = {name: _without_error_score(m) for name, m in models.items()}
        arrays = unpack_arrays(data["arrays"], _DTYPES, "crystal spread")
        n, k = (int(s) for s in data["shape"])
        missing = set(INVARIANTS) - set(models)
        if missing:
            raise ValueError(f"crystal spread lacks models for {sorted(missing)}")
        return cls(
            n_descriptors=int(data["n_descriptors"]),
            keep=arrays["keep"].astype(np.int64),
            mean=arrays["mean"].copy(),
            std=arrays["std"].copy(),
            components=arrays["components"].reshape(k, -1).astype(np.float64),
            reference=arrays["reference"].reshape(n, k).astype(np.float64),
            families=arrays["families"].copy(),
            element_counts={f: arrays[f"counts_{f}"].astype(np.float64) for f in FAMILIES},
            models={name: SpreadModel.from_dict(m) for name, m in models.items()},
            error_model=None if data.get("error_model") is None else ErrorModel.from_dict(data["error_model"]),
        )


def _without_error_score(model: Mapping[str, Any]) -> dict[str, Any]:
    """Return a format-1 spread model (six features) with ``error_score`` appended at weight 0."""
    n_old = len(FEATURES) - 1
    arrays = {k: list(model[k]) for k in ("centre", "scale", "weights")}
    if any(len(a) != n_old for a in arrays.values()):
        raise ValueError(f"a format-1 spread model needs {n_old} centres, scales and weights")
    return {**model, "centre": [*arrays["centre"], 0.0], "scale": [*arrays["scale"], 1.0],
            "weights": [*arrays["weights"], 0.0]}


_DTYPES = {
    "keep": "<i4",
    "mean": "<f8",
    "std": "<f8",
    "components": "<f4",
    "reference": "<f4",
    "families": "<u1",
    **{f"counts_{f}": "<i4" for f in FAMILIES},
}
