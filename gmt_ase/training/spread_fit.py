"""Fit the per-crystal spread (:mod:`gmt_ase.invariant.spread`) of a checkpoint on the validation split.

Four steps, each a function:

1. :func:`smooth_columns`: descriptor columns whose standardised value moves by less than
   :data:`RATTLE_TOLERANCE` when the validation crystals are rattled by :data:`RATTLE` A (point-group order,
   hard-shell counts and angle fractions jump and are left out of the distance);
2. :func:`fit_reference`: standardisation and :data:`N_COMPONENTS` principal axes of the training crystals'
   kept descriptors, and the per-family element counts;
3. :func:`gmt_ase.training.error_model_fit.fit_error_model`: the error model of the ``error_score``
   feature, from out-of-fold residuals of the training crystals (never the validation ones);
4. :func:`fit_model`: per invariant, the log-sigma weights by maximum likelihood of a Laplace distribution
   of the validation log errors (robust to their heavy tails; the weights of disagreement, distance,
   rarity and the error score kept non-negative: sigma grows on thin ice), then the intercept shifted so
   that ``|log error| <= 1.96 sigma`` holds for a conformal 95 % of the validation crystals (normalised
   split conformal calibration).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize

from gmt_ase.invariant.error_model import ErrorModel
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.spread import FAMILIES, FEATURES, LOG_RANGE, Z_CLIP, CrystalSpread, SpreadModel
from gmt_ase.training.error_model_fit import fit_error_model
from gmt_ase.training.split_widths import descriptor_scales
from gmt_ase.training.spread_data import record_descriptors
from gmt_ase.training.train_invariants import record_invariants

__all__ = [
    "N_COMPONENTS",
    "RATTLE",
    "RATTLE_TOLERANCE",
    "family_mask",
    "fit_crystal_spread",
    "fit_model",
    "fit_reference",
    "smooth_columns",
]

#: Rattle amplitude (A, per Cartesian component) of the smoothness screen.
RATTLE = 0.02
#: Largest standardised change (99th percentile over crystals) a distance column may show under the rattle.
RATTLE_TOLERANCE = 0.1
#: Principal axes kept for the distance.
N_COMPONENTS = 16
#: Validation crystals rattled in the smoothness screen.
SCREEN_SIZE = 200
#: Ridge penalty on the standardised weights.
RIDGE = 0.05
_Z95 = 1.959963984540054
#: Features whose weight may be negative (a large value means a small relative error).
_SIGNED = frozenset({"log_value", "log_g_over_k"})


def smooth_columns(plain: np.ndarray, rattled: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Return the indices of the columns whose 99th-percentile standardised change under a rattle is small.

    ``plain`` and ``rattled`` are (N, D) descriptors of the same crystals, ``scale`` (D,) the columns'
    training standard deviations.
    """
    change = np.abs(np.asarray(rattled) - np.asarray(plain)) / np.where(scale > 0, scale, np.inf)
    quantile = np.quantile(np.nan_to_num(change, nan=np.inf), 0.99, axis=0)
    return np.flatnonzero((quantile <= RATTLE_TOLERANCE) & (scale > 0))


def family_mask(targets: Mapping[str, Any]) -> int:
    """Bit mask of the training families (:data:`~gmt_ase.invariant.spread.FAMILIES`) a record's targets serve."""
    has = {
        "dielectric": "dielectric_electronic" in targets,
        "piezoelectric": "piezoelectric" in targets,
        "elastic": "elastic" in targets or "k_vrh" in targets,
    }
    return sum(1 << FAMILIES.index(family) for family, present in has.items() if present)


def fit_reference(
    descriptors: np.ndarray, masks: Sequence[int], numbers: Sequence[np.ndarray], keep: np.ndarray
) -> dict[str, Any]:
    """Standardisation, principal axes, family masks and element counts of the training crystals."""
    x = np.asarray(descriptors, dtype=np.float64)[:, keep]
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    z = Z_CLIP * np.tanh((x - mean) / std / Z_CLIP)  # as CrystalSpread.project
    _, _, axes = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    masks = np.asarray(masks, dtype=np.uint8)
    counts = {f: np.zeros(119, dtype=np.int64) for f in FAMILIES}
    for mask, z_numbers in zip(masks, numbers, strict=True):
        for bit, family in enumerate(FAMILIES):
            if mask & (1 << bit):
                counts[family][np.unique(np.asarray(z_numbers, dtype=int))] += 1
    return {
        "keep": np.asarray(keep, dtype=np.int64),
        "mean": mean,
        "std": std,
        "components": axes[:N_COMPONENTS],
        "families": masks,
        "element_counts": counts,
        "descriptors": descriptors,
    }


def reference_spread(
    reference: dict[str, Any], models: dict[str, SpreadModel], error_model: ErrorModel | None = None
) -> CrystalSpread:
    """Build a :class:`CrystalSpread` from :func:`fit_reference`'s output, the invariants' models and errors."""
    partial = CrystalSpread(
        n_descriptors=reference["descriptors"].shape[1],
        keep=reference["keep"],
        mean=reference["mean"],
        std=reference["std"],
        components=reference["components"],
        reference=np.zeros((1, 1)),
        families=reference["families"],
        element_counts=reference["element_counts"],
        models=models,
        error_model=error_model,
    )
    points = partial.project(reference["descriptors"]).astype(np.float32).astype(np.float64)
    return CrystalSpread(**{**partial.__dict__, "reference": points})


def _laplace_loss(params: np.ndarray, z: np.ndarray, error: np.ndarray) -> float:
    log_sigma = params[0] + LOG_RANGE * np.tanh((z @ params[1:]) / LOG_RANGE)  # as SpreadModel.log_sigma
    return float(np.mean(log_sigma + error * np.exp(-log_sigma)) + RIDGE * np.sum(params[1:] ** 2))


def fit_model(features: np.ndarray, log_error: np.ndarray) -> tuple[SpreadModel, dict[str, float]]:
    """Fit the log-sigma model of one invariant from (N, F) validation features and (N,) ``|log error|``.

    Returns the model and a summary (validation coverage of the 95 % interval, number of crystals).
    """
    features, error = np.asarray(features, dtype=np.float64), np.abs(np.asarray(log_error, dtype=np.float64))
    centre, scale = features.mean(axis=0), features.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = (features - centre) / scale
    bounds = [(None, None)] + [(None, None) if name in _SIGNED else (0.0, None) for name in FEATURES]
    start = np.zeros(len(FEATURES) + 1)
    start[0] = np.log(np.mean(error) + 1e-12)
    result = minimize(_laplace_loss, start, args=(z, error), method="L-BFGS-B", bounds=bounds)
    weights = result.x[1:]
    model = SpreadModel(float(result.x[0]), centre, scale, weights)
    sigma = np.exp(model.log_sigma(features))
    n = len(error)
    level = min(1.0, np.ceil((n + 1) * 0.95) / n)  # split-conformal finite-sample quantile
    factor = float(np.quantile(error / sigma, level) / _Z95)
    model = SpreadModel(float(result.x[0] + np.log(factor)), centre, scale, weights)
    coverage = float(np.mean(error <= _Z95 * np.exp(model.log_sigma(features))))
    return model, {"n": n, "val_coverage_95": coverage, **dict(zip(FEATURES, map(float, weights), strict=True))}


def _rattled(structure: Any, amplitude: float, rng: np.random.Generator) -> Any:
    from pymatgen.core import Structure

    noise = rng.normal(scale=amplitude, size=(len(structure), 3))
    return Structure(structure.lattice, structure.species, structure.cart_coords + noise, coords_are_cartesian=True)


def _names(predictor: Any, columns: np.ndarray) -> list[str]:
    names = getattr(predictor.invariant_model, "descriptor_names", None)
    return [str(names[c]) if names is not None else str(c) for c in columns]


def fit_crystal_spread(
    predictor: Any, train: Sequence[Any], collected: Mapping[str, Any], error_model: bool = True, threads: int = 1
) -> tuple[CrystalSpread, dict]:
    """Fit the per-crystal spread of a predictor.

    Parameters
    ----------
    predictor
        A :class:`~gmt_ase.inference.predictor.TensorPredictor` with an invariant model.
    train
        The training records (reference crystals and element counts).
    collected
        :func:`gmt_ase.training.spread_data.collect` of the validation records.
    error_model
        Fit the error model of the ``error_score`` feature on the training records (needs LightGBM; minutes).
    threads
        LightGBM threads of the error model.

    Returns
    -------
    CrystalSpread, dict
        The spread and a JSON-safe summary (kept and dropped columns, per-invariant fit).
    """
    from gmt_ase.predict import prepare_valid

    kept_train, train_descriptors = record_descriptors(predictor, train)
    rng = np.random.default_rng(20261206)
    records = collected["records"][:SCREEN_SIZE]
    moved = [_rattled(record.structure, RATTLE, rng) for record in records]
    index, crystals = prepare_valid(list(range(len(records))), moved, predictor)
    model = predictor.invariant_model
    rattled = model.columns(model.all_descriptors(predictor.graphs(crystals), [c.cell for c in crystals]))
    keep = smooth_columns(collected["descriptors"][index], rattled, train_descriptors.std(axis=0))
    masks = [family_mask(record.targets) for record in kept_train]
    numbers = [np.asarray(record.structure.atomic_numbers) for record in kept_train]
    reference = fit_reference(train_descriptors, masks, numbers, keep)
    errors, error_fit = None, {}
    if error_model:
        widths = model.split_widths
        if widths is None:
            widths = 0.1 * descriptor_scales(train_descriptors)
        truths = [record_invariants(record.targets) for record in kept_train]
        errors, error_fit = fit_error_model(
            train_descriptors, {name: np.array([t[name] for t in truths]) for name in INVARIANTS}, widths, threads
        )
    names = list(INVARIANTS)
    values = {name: collected["pred"][:, j] for j, name in enumerate(names)}
    members = (
        {name: collected["members"][:, :, j] for j, name in enumerate(names)} if len(collected["members"]) else None
    )
    features = reference_spread(reference, {}, errors).features(
        values, members, collected["descriptors"], collected["numbers"]
    )
    dropped = np.setdiff1d(np.arange(train_descriptors.shape[1]), keep)
    summary: dict[str, Any] = {
        "columns_kept": len(keep), "columns_dropped": _names(predictor, dropped), "error_model": error_fit, "fit": {}
    }
    models = {}
    for j, (name, offset) in enumerate(INVARIANTS.items()):
        pred, true = collected["pred"][:, j], collected["true"][:, j]
        ok = np.isfinite(true) & (true > offset) & (pred > offset)
        log_error = np.log(pred[ok] - offset) - np.log(true[ok] - offset)
        models[name], summary["fit"][name] = fit_model(features[name][ok], log_error)
    return reference_spread(reference, models, errors), summary
