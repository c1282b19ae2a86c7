"""Choose the smooth trees' split widths and blend weights of an invariant model on the validation split.

``python -m gmt_ase.training.split_widths runs/inv`` reads ``runs/inv/invariant_model.json`` and the cached
``runs/inv/features.npz`` of :mod:`gmt_ase.training.train_invariants`. For each candidate ``alpha`` it sets
every descriptor's split half width to ``alpha`` standard deviations (over the training split), evaluates
the smooth trees on the validation split, re-chooses each invariant's blend weight with the network, and
reports the validation log-MAE beside the hard trees'. Geometric minima, maxima and spreads get
:data:`KINK_FACTOR` times wider splits (:func:`kinked_columns`). The largest ``alpha`` whose mean log-MAE over the
invariants stays within ``--tolerance`` of the hard trees' is written back into the JSON: wider splits are
smoother under strain and rattles, and the tolerance bounds what that may cost.

``--apply-to OTHER`` writes the chosen widths and blend weights into another folder's model too (the trees
refit on train + val, whose validation errors are no guide), and ``--network FEATURES`` evaluates the blend
with another network's cached invariants (the ``fast`` model reuses the ``default`` trees).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from gmt_ase.invariant.descriptors import kinked_columns
from gmt_ase.invariant.invariant_model import INVARIANTS, InvariantModel
from gmt_ase.training.train_invariants import BLEND_WEIGHTS

__all__ = ["ALPHAS", "KINK_FACTOR", "descriptor_scales", "fit_blend", "kinked_columns", "split_widths"]

#: Candidate half widths, in standard deviations of each descriptor.
ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.3)
#: Wider splits on the geometric descriptors that have a kink where a symmetric crystal is strained or
#: rattled (minima, maxima, spreads and eigenvalue gaps grow like |strain| from their symmetric value): at 5x,
#: validation log-MAE +1-2 %, and the strain and rattle checks' second differences shrink accordingly.
KINK_FACTOR = 5.0


def split_widths(names: Sequence[str], scales: np.ndarray, alpha: float, kink_factor: float = KINK_FACTOR
                 ) -> np.ndarray:
    """Half widths: ``alpha`` standard deviations, ``kink_factor`` times more on :func:`kinked_columns`."""
    return alpha * np.asarray(scales) * np.where(kinked_columns(names), kink_factor, 1.0)


def descriptor_scales(descriptors: np.ndarray) -> np.ndarray:
    """Per-column standard deviation (1 for a constant column), the unit of the split widths."""
    scale = np.nanstd(np.asarray(descriptors, dtype=np.float64), axis=0)
    return np.where(scale > 0, scale, 1.0)


def fit_blend(model: InvariantModel, arrays: dict[str, np.ndarray]) -> tuple[InvariantModel, dict[str, float]]:
    """Re-choose every invariant's network weight on the validation split; return the model and its log-MAEs.

    The validation spread ``log_std`` of each blended log error is updated too.
    """
    val = arrays["split"] == "val"
    x = model.columns(arrays["descriptors"][val])
    targets, errors = {}, {}
    for j, (name, offset) in enumerate(INVARIANTS.items()):
        with np.errstate(divide="ignore", invalid="ignore"):
            truth = np.log(arrays["truth"][val, j] - offset)
            own = np.log(arrays["network"][val, j] - offset)
        keep = np.isfinite(truth) & np.isfinite(own)
        trees = model.tree_values(model.targets[name], x[keep])
        maes = [np.mean(np.abs((1 - w) * trees + w * own[keep] - truth[keep])) for w in BLEND_WEIGHTS]
        best = int(np.argmin(maes))
        weight = float(BLEND_WEIGHTS[best])
        log_std = float(np.std((1 - weight) * trees + weight * own[keep] - truth[keep]))
        targets[name] = replace(model.targets[name], network_weight=weight, log_std=log_std)
        errors[name] = float(maes[best])
    return replace(model, targets=targets), errors


def _load(folder: Path, network: Path | None) -> tuple[InvariantModel, dict[str, np.ndarray]]:
    model = InvariantModel.from_dict(json.loads((folder / "invariant_model.json").read_text()))
    with np.load(folder / "features.npz", allow_pickle=False) as stored:
        arrays = dict(stored)
    if network is not None:
        with np.load(network, allow_pickle=False) as other:
            if not np.array_equal(other["split"], arrays["split"]):
                raise ValueError(f"{network} holds other records than {folder / 'features.npz'}")
            arrays["network"] = other["network"]
    return model, arrays


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="train_invariants output folder (early-stopped trees)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed relative log-MAE increase")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--kink-factor", type=float, default=KINK_FACTOR, help="see KINK_FACTOR")
    parser.add_argument("--network", type=Path, help="features.npz whose network invariants to blend with")
    parser.add_argument("--out", type=Path, help="write the model here (default: back into the folder)")
    parser.add_argument("--apply-to", type=Path, help="another folder's invariant_model.json to update too")
    parser.add_argument("--apply-out", type=Path, help="where to write that model (default: in place)")
    args = parser.parse_args(argv)
    model, arrays = _load(args.folder, args.network)
    scales = model.columns(descriptor_scales(arrays["descriptors"][arrays["split"] == "train"])[None, :])[0]
    _, hard = fit_blend(replace(model, split_widths=None), arrays)
    report: dict[str, object] = {"hard": hard}
    fitted = {}
    for alpha in args.alphas:
        widths = split_widths(model.descriptor_names, scales, alpha, args.kink_factor)
        fitted[alpha], report[str(alpha)] = fit_blend(replace(model, split_widths=widths), arrays)
        print(json.dumps({alpha: report[str(alpha)]}), flush=True)
    hard_mean = np.mean(list(hard.values()))
    ok = [a for a in args.alphas if np.mean(list(report[str(a)].values())) <= (1 + args.tolerance) * hard_mean]
    alpha = max(ok) if ok else min(args.alphas)
    chosen = fitted[alpha]
    report["chosen_alpha"] = alpha
    report["network_weights"] = {name: t.network_weight for name, t in chosen.targets.items()}
    (args.out or args.folder / "invariant_model.json").write_text(json.dumps(chosen.to_dict()))
    if args.apply_to is not None:
        other = InvariantModel.from_dict(json.loads((args.apply_to / "invariant_model.json").read_text()))
        targets = {name: replace(t, network_weight=chosen.targets[name].network_weight,
                                 log_std=chosen.targets[name].log_std) for name, t in other.targets.items()}
        applied = replace(other, targets=targets, split_widths=chosen.split_widths)
        (args.apply_out or args.apply_to / "invariant_model.json").write_text(json.dumps(applied.to_dict()))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
