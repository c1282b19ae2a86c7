"""Train the invariant model (boosted trees on crystal descriptors) for a network checkpoint.

``python -m gmt_ase.training.train_invariants --model runs/ens.pt --data-dir data --out runs/inv`` does, on the
same material-id split as the network's training:

1. the descriptors and the network's own (un-rescaled) invariants of every record, cached as plain
   NumPy arrays in ``OUT/features.npz`` (``allow_pickle=False``; rerunning reuses them, unless they were
   written for other descriptors);
2. per invariant, LightGBM trees on ``log(value - offset)`` with an L1 loss (the metrics are absolute and
   relative errors), :data:`N_SEEDS` seeds averaged, early-stopped on the validation split; G_VRH is
   half a direct model and half the K model plus a model of log(G/K);
3. the network's weight in the blend, chosen on the validation split, and the validation spread of
   the blended log error (``log_std``);
4. with ``--refit``, the same trees trained again on train + val with the early-stopped rounds (scaled by
   the data size); calibrate the early-stopped model and carry its calibration over
   (:mod:`gmt_ase.training.calibration` ``--apply-to``), since the refit one has seen the validation split;
5. ``OUT/invariant_model.json`` (plain data) and ``OUT/metrics.json``; with ``--attach OUT.pt`` a copy of
   the checkpoint that carries the invariant model (then release it as usual).

LightGBM is needed here only (``pip install lightgbm``); prediction uses the converted arrays.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmt_ase.core.invariants import dielectric_mean, piezo_norm, vrh_moduli
from gmt_ase.inference.io import save_atomically
from gmt_ase.invariant.boosted_trees import combine_ensembles, from_lightgbm
from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES, element_table_from_pymatgen
from gmt_ase.invariant.invariant_model import INVARIANTS, InvariantModel, InvariantTarget, blend_invariants
from gmt_ase.training.data import ALL_SOURCES, load_records, split_by_material

__all__ = ["BLEND_WEIGHTS", "LIGHTGBM_PARAMS", "attach_invariant_model", "record_invariants", "train_invariant_model"]

#: Tree settings (issue 9 experiments). 5-fold grouped cross-validation on train + val: L1 beat L2 and
#: Huber for K and G; with the bond-network descriptors K/G MAE went 11.02/11.75 -> 10.67/11.26 GPa, and
#: learning rate 0.03 gave 10.25/11.07 (31 leaves: no gain). Validation log-MAE of K, G: 0.116, 0.230 at
#: rate 0.05 with one seed; 0.114, 0.229 with depth <= 5 (shallower, faster trees); 0.112, 0.226 with
#: two seeds averaged (the settings below).
LIGHTGBM_PARAMS: dict[str, Any] = {
    "objective": "l1",
    "learning_rate": 0.05,
    "max_depth": 5,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
}
BLEND_WEIGHTS = np.linspace(0.0, 0.6, 13)
#: Boosted models of this many seeds are averaged (bagging; about -2 % G MAE in cross-validation for two).
N_SEEDS = 2
_SPLITS = ("train", "val", "test")


def record_invariants(targets: dict[str, np.ndarray]) -> dict[str, float]:
    """DFT invariants of one record's targets, in :data:`INVARIANTS` order (NaN where absent; zero piezo too)."""
    values = dict.fromkeys(INVARIANTS, float("nan"))
    if "elastic" in targets:
        values["k_vrh"], values["g_vrh"] = vrh_moduli(targets["elastic"])
    if "k_vrh" in targets:
        values["k_vrh"], values["g_vrh"] = float(targets["k_vrh"]), float(targets["g_vrh"])
    if "dielectric_electronic" in targets:
        electronic = dielectric_mean(targets["dielectric_electronic"])
        values["eps_electronic_mean"] = electronic
        values["eps_total_mean"] = electronic + dielectric_mean(targets["dielectric_ionic"])
    if "piezoelectric" in targets and piezo_norm(targets["piezoelectric"]) > 1e-6:
        values["piezo_norm"] = piezo_norm(targets["piezoelectric"])
    return values


def _features(model: str, data_dir: Path, sources: Sequence[str], cache: Path) -> dict[str, np.ndarray]:
    """Descriptors, network invariants, DFT invariants, split and the network's cutoff (cached)."""
    if cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            arrays = dict(stored)
        if tuple(arrays.get("descriptor_names", ())) == DESCRIPTOR_NAMES:
            return arrays  # otherwise written by an older version: recompute
    from gmt_ase.inference.predictor import TensorPredictor
    from gmt_ase.predict import prepare_valid

    predictor = TensorPredictor.from_checkpoint(model, device="cpu")
    predictor.invariant_model = None  # the network's own tensors
    table = element_table_from_pymatgen()
    scratch = InvariantModel(table=table, cutoff=predictor.cutoff, targets={})
    records = load_records(data_dir, sources)
    split_of = {id(r): name for name, rs in split_by_material(records).items() for r in rs}
    kept, crystals = prepare_valid(records, [r.structure for r in records], predictor)
    names = list(INVARIANTS)
    descriptors, own = [], []
    for start in range(0, len(crystals), 64):
        chunk = crystals[start : start + 64]
        descriptors.append(scratch.descriptors(predictor.graphs(chunk), [c.cell for c in chunk]))
        own += [[blend_invariants(t)[n] for n in names] for t in predictor.predict(chunk)]
    arrays = {
        "descriptors": np.concatenate(descriptors),
        "descriptor_names": np.array(DESCRIPTOR_NAMES),
        "network": np.array(own),
        "truth": np.array([list(record_invariants(r.targets).values()) for r in kept]),  # INVARIANTS order
        "split": np.array([split_of[id(r)] for r in kept]),
        "full_tensor": np.array(["elastic" in r.targets for r in kept]),
        "element_table": table.values,
        "cutoff": np.array(predictor.cutoff),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **arrays)
    return arrays


def _log(values: np.ndarray, offset: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(values - offset)


def _train_seeds(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray | None, seed: int, rounds: int
) -> tuple[list[Any], int]:
    """LightGBM boosters of :data:`N_SEEDS` seeds; early-stopped on ``val`` when given, else ``rounds`` each."""
    import lightgbm

    boosters = []
    for k in range(N_SEEDS):
        params = {**LIGHTGBM_PARAMS, "seed": seed + k, "num_threads": 1}
        kwargs: dict[str, Any] = {}
        if val is not None:
            kwargs = {"valid_sets": [lightgbm.Dataset(x[val], y[val])],
                      "callbacks": [lightgbm.early_stopping(200, verbose=False)]}
        booster = lightgbm.train(params, lightgbm.Dataset(x[train], y[train]), num_boost_round=rounds, **kwargs)
        if val is not None:
            booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
        boosters.append(booster)
    return boosters, int(np.mean([b.current_iteration() for b in boosters]))


def _fit_target(
    x: np.ndarray, y: np.ndarray, own: np.ndarray, split: np.ndarray, seed: int, refit: bool,
    components: Sequence[tuple[np.ndarray, float]] | None = None,
) -> tuple[InvariantTarget, dict[str, Any]]:
    """Trees for one invariant's log value ``y``, its network blend weight and validation spread.

    ``components`` are ``(target, weight)`` pairs whose weighted sum of tree predictions is the log value
    (default: ``y`` alone); each is early-stopped on its own. Sums of trees are trees, so the result is one
    ensemble.
    """
    rows = {name: (split == name) & np.isfinite(y) for name in _SPLITS}
    parts = []
    for target, part_weight in components or [(y, 1.0)]:
        part_rows = {name: (split == name) & np.isfinite(target) for name in _SPLITS}
        boosters, rounds = _train_seeds(x, target, part_rows["train"], part_rows["val"], seed, rounds=6000)
        parts.append((target, part_weight, part_rows, boosters, rounds))
    pred = sum(w * np.mean([b.predict(x) for b in boosters], axis=0) for _, w, _, boosters, _ in parts)
    val = rows["val"] & np.isfinite(own)
    errors = [np.abs((1 - w) * pred[val] + w * own[val] - y[val]).mean() for w in BLEND_WEIGHTS]
    weight = float(BLEND_WEIGHTS[int(np.argmin(errors))])
    blended = (1 - weight) * pred + weight * np.where(np.isfinite(own), own, pred)
    log_std = float(np.std(blended[val] - y[val]))
    ensembles, weights = [], []
    for target, part_weight, part_rows, boosters, rounds in parts:
        if refit:  # train + val with the early-stopped rounds, grown by the extra data; test stays unseen
            both = part_rows["train"] | part_rows["val"]
            grown = int(round(rounds * both.sum() / part_rows["train"].sum()))
            boosters, _ = _train_seeds(x, target, both, None, seed, rounds=grown)
        ensembles += [from_lightgbm(b) for b in boosters]
        weights += [part_weight / len(boosters)] * len(boosters)
    info = {"rounds": [int(part[4]) for part in parts], "network_weight": weight,
            "val_log_mae": float(min(errors)), "val_log_std": log_std, "n_train": int(rows["train"].sum()),
            "n_val": int(rows["val"].sum()), "refit": refit}
    return InvariantTarget(trees=combine_ensembles(ensembles, weights), network_weight=weight, log_std=log_std), info


def train_invariant_model(
    model: str, data_dir: Path, out: Path, sources: Sequence[str] = ALL_SOURCES, seed: int = 0,
    refit: bool = False, exclude: Sequence[str] = (),
) -> tuple[InvariantModel, dict[str, Any]]:
    """Train the invariant model of a network checkpoint; writes ``out/invariant_model.json``.

    ``exclude`` names descriptors the trees must not read (the model then stores the others' names).
    """
    arrays = _features(model, data_dir, sources, out / "features.npz")
    from gmt_ase.invariant.descriptors import ElementTable

    unknown = set(exclude) - set(DESCRIPTOR_NAMES)
    if unknown:
        raise ValueError(f"unknown descriptors to exclude: {sorted(unknown)}")
    names = tuple(name for name in DESCRIPTOR_NAMES if name not in set(exclude))
    arrays = {**arrays, "descriptors": arrays["descriptors"][:, [DESCRIPTOR_NAMES.index(n) for n in names]]}

    targets, metrics = {}, {}
    logs = {name: _log(arrays["truth"][:, j], offset) for j, (name, offset) in enumerate(INVARIANTS.items())}
    for j, (name, offset) in enumerate(INVARIANTS.items()):
        own = _log(arrays["network"][:, j], offset)
        components = None
        if name == "g_vrh":  # half direct, half K times the Pugh ratio G/K (validation G MAE -2 %)
            components = [(logs["g_vrh"], 0.5), (logs["k_vrh"], 0.5), (logs["g_vrh"] - logs["k_vrh"], 0.5)]
        targets[name], metrics[name] = _fit_target(
            arrays["descriptors"], logs[name], own, arrays["split"], seed, refit, components
        )
    invariant_model = InvariantModel(
        table=ElementTable(arrays["element_table"]), cutoff=float(arrays["cutoff"]), targets=targets,
        descriptor_names=names,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "invariant_model.json").write_text(json.dumps(invariant_model.to_dict()))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return invariant_model, metrics


def attach_invariant_model(checkpoint: Path, invariant_model: InvariantModel, out: Path) -> None:
    """Write a copy of ``checkpoint`` that carries ``invariant_model`` (plain data, loads with weights_only)."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if abs(float(payload["cutoff"]) - invariant_model.cutoff) > 1e-9:
        raise ValueError(f"invariant model cutoff {invariant_model.cutoff} != checkpoint cutoff {payload['cutoff']}")
    save_atomically({**payload, "invariant_model": invariant_model.to_dict(binary=True)}, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Train the invariant model (boosted trees) of a checkpoint.")
    parser.add_argument("--model", required=True, help="network checkpoint file")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="training data folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder (features cache, model, metrics)")
    parser.add_argument("--seed", type=int, default=0, help="LightGBM seed")
    parser.add_argument("--refit", action="store_true", help="refit on train + val with the early-stopped rounds")
    parser.add_argument("--attach", type=Path, help="write a copy of --model carrying the invariant model here")
    parser.add_argument("--exclude", nargs="+", default=(), metavar="DESCRIPTOR", help="descriptors not to read")
    args = parser.parse_args(argv)
    invariant_model, metrics = train_invariant_model(args.model, args.data_dir, args.out, seed=args.seed,
                                                     refit=args.refit, exclude=args.exclude)
    print(json.dumps(metrics, indent=2))
    if args.attach:
        attach_invariant_model(Path(args.model), invariant_model, args.attach)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
