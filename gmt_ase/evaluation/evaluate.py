"""Evaluate a model on labelled records: GMTNet metrics per target and crystal system, parity plots, CLI.

``gmt-ase evaluate --model default --data-dir data --split test --seed 0 --out reports/`` (or
``python -m gmt_ase.evaluation.evaluate ...``) loads the records
(:func:`gmt_ase.training.data.load_records`), takes one split of
:func:`gmt_ase.training.data.split_by_material`, predicts every structure once and writes ``metrics.json`` and
parity plots (PNG) to ``--out``.

Metrics (see :mod:`gmt_ase.evaluation.metrics` for their definitions and the zero-target convention), per target:

* ``dielectric_electronic``, ``dielectric_ionic`` and ``dielectric_total`` (= electronic + ionic, for
  records with both), 3x3;
* ``piezoelectric`` 3x6: ``overall`` excludes zero true tensors; ``with_zeros`` adds them plus one
  zero-target sample for every centrosymmetric structure of the other sources (materials without a
  piezoelectric record), which a symmetric model gets exactly right;
* ``elastic`` 6x6, plus the MAE of K_VRH and G_VRH computed from the full tensors with pymatgen;
* ``elastic_binary``: K_VRH and G_VRH MAE against the scalar targets of the binaries.

Each target also has ``by_crystal_system`` (from the spglib space-group number at the prediction's
``symprec``) and ``by_source`` breakdowns; ``symmetry_violations`` counts predictions that break their
point group (:func:`gmt_ase.evaluation.metrics.symmetry_violations`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gmt_ase.core.symmetry import DEFAULT_SYMPREC
from gmt_ase.core.tensors import TARGETS
from gmt_ase.evaluation._pairs import _MODEL_OUTPUTS, _collect, _Pairs, _Sample
from gmt_ase.evaluation.metrics import is_zero, kg_errors, symmetry_violations, tensor_errors
from gmt_ase.evaluation.reports import format_table, parity_plots

if TYPE_CHECKING:
    from gmt_ase.inference.predictor import TensorPredictor
    from gmt_ase.training.data import TensorRecord

__all__ = ["TENSOR_TARGETS", "add_parser", "crystal_system", "evaluate", "format_table", "main", "parity_plots", "run"]

#: Tensor targets evaluated with :func:`gmt_ase.evaluation.metrics.tensor_errors`, in report order.
TENSOR_TARGETS = tuple(TARGETS)
_SYSTEM_BOUNDS = (
    (2, "triclinic"),
    (15, "monoclinic"),
    (74, "orthorhombic"),
    (142, "tetragonal"),
    (167, "trigonal"),
    (194, "hexagonal"),
    (230, "cubic"),
)


def crystal_system(space_group_number: int) -> str:
    """Crystal system of an international space-group number (1-230)."""
    for upper, name in _SYSTEM_BOUNDS:
        if 1 <= space_group_number <= upper:
            return name
    raise ValueError(f"space-group number must be in 1..230, got {space_group_number}")


def _predict(
    predictor: TensorPredictor, records: Sequence[TensorRecord], batch_size: int, symprec: float
) -> tuple[list[_Sample], Counter]:
    """Predict every record that passes validation and symmetry analysis; count the others by reason."""
    from gmt_ase.predict import prepare_crystal

    prepared, skipped = [], Counter()
    for record in records:
        try:
            crystal, symmetry = prepare_crystal(record.structure, predictor, symprec)
        except (ValueError, TypeError) as error:
            skipped[type(error).__name__] += 1
            continue
        prepared.append((record, crystal, symmetry))
    outputs = predictor.predict([crystal for _, crystal, _ in prepared], batch_size=batch_size)
    samples = []
    for (record, crystal, symmetry), pred in zip(prepared, outputs, strict=True):
        ops = np.asarray(crystal.operations, dtype=float)
        inversion = bool(np.any(np.all(np.abs(ops + np.eye(3)) < 1e-6, axis=(1, 2))))
        samples.append(_Sample(record, crystal_system(symmetry.space_group_number), inversion, ops, pred))
    return samples, skipped


def _stored_moduli(pairs: _Pairs, which: str) -> Any:
    values = np.array(getattr(pairs, which)).reshape(-1, 2)
    return values[:, 0], values[:, 1]


def _grouped(pairs: _Pairs, labels: list[str], metric: Callable[[_Pairs], dict]) -> dict[str, dict]:
    return {label: metric(pairs.subset([x == label for x in labels])) for label in sorted(set(labels))}


def _tensor_metric(pairs: _Pairs) -> dict[str, float]:
    return tensor_errors(pairs.pred, pairs.true)


def _kg_metric(pairs: _Pairs) -> dict[str, float]:
    return kg_errors(_stored_moduli(pairs, "pred"), _stored_moduli(pairs, "true"))


def _target_metrics(pairs: _Pairs, metric: Callable[[_Pairs], dict]) -> dict[str, Any]:
    return {
        "overall": metric(pairs),
        "by_crystal_system": _grouped(pairs, pairs.crystal_system, metric),
        "by_source": _grouped(pairs, pairs.source, metric),
    }


def _all_metrics(pairs: dict[str, _Pairs], moduli: dict[str, _Pairs]) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name in TENSOR_TARGETS:
        if name not in pairs or not pairs[name].true:
            continue
        target = pairs[name]
        if name == "piezoelectric":
            nonzero = ~is_zero(target.true)
            metrics[name] = _target_metrics(target.subset(nonzero), _tensor_metric)
            zeros = pairs["piezoelectric_zeros"]
            metrics[name]["with_zeros"] = _target_metrics(target.joined(zeros), _tensor_metric)
            metrics[name]["n_zero_targets"] = int((~nonzero).sum()) + len(zeros.true)
        else:
            metrics[name] = _target_metrics(target, _tensor_metric)
    if "elastic" in metrics and "elastic" in moduli:
        metrics["elastic"]["kg"] = _target_metrics(moduli["elastic"], _kg_metric)
    if "elastic_binary" in moduli:
        metrics["elastic_binary"] = {"kg": _target_metrics(moduli["elastic_binary"], _kg_metric)}
    return metrics


def _violations(samples: Sequence[_Sample], tol: float) -> dict[str, int]:
    ops = [s.operations for s in samples]
    return {name: symmetry_violations([s.pred[name] for s in samples], ops, tol) for name in _MODEL_OUTPUTS}


def evaluate(
    predictor: TensorPredictor,
    records: Sequence[TensorRecord],
    batch_size: int = 64,
    symprec: float = DEFAULT_SYMPREC,
    symmetry_tol: float = 1e-6,
) -> dict[str, Any]:
    """Predict every record's structure and compare with its targets.

    Parameters
    ----------
    predictor
        A loaded :class:`gmt_ase.inference.predictor.TensorPredictor`.
    records
        Labelled records (:class:`gmt_ase.training.data.TensorRecord`) of any sources.
    batch_size
        Structures per model call.
    symprec
        spglib tolerance (Angstrom) of the point group the predictions are projected onto.
    symmetry_tol
        Relative tolerance of the symmetry-violation count.

    Returns
    -------
    dict
        ``metrics``: JSON-serialisable nested dict (``model``, ``records``, ``targets``,
        ``symmetry_violations``); ``pairs``: per target, stored-form ``true`` and ``pred`` arrays (N, a, b)
        with ``material_id``, ``source`` and ``crystal_system`` lists (``piezoelectric_zeros`` holds the
        added zero targets); ``moduli``: the same with (N, 2) arrays of (K_VRH, G_VRH) in GPa.

    """
    samples, skipped = _predict(predictor, records, batch_size, symprec)
    pairs, moduli = _collect(samples)
    card = predictor.card
    metrics = {
        "model": {key: card.get(key) for key in ("name", "version", "sha256", "gmt_ase_version")},
        "symprec": float(symprec),
        "records": {"total": len(records), "predicted": len(samples), "skipped": dict(skipped)},
        "targets": _all_metrics(pairs, moduli),
        "symmetry_violations": _violations(samples, symmetry_tol),
    }
    return {
        "metrics": metrics,
        "pairs": {name: p.as_arrays() for name, p in pairs.items()},
        "moduli": {name: p.as_arrays() for name, p in moduli.items()},
    }


def _configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="directory of the data files")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "all"))
    parser.add_argument("--seed", type=int, default=0, help="seed of split_by_material (default 0)")
    parser.add_argument("--fractions", type=float, nargs=3, default=(0.8, 0.1, 0.1), metavar=("TRAIN", "VAL", "TEST"))
    parser.add_argument("--sources", nargs="+", default=None, help="data sources (default: all)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate at most this many records")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--symprec", type=float, default=DEFAULT_SYMPREC, help="spglib tolerance in A")
    parser.add_argument("--no-plots", action="store_true", help="write metrics.json only")
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``gmt-ase evaluate`` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on a labelled dataset",
        description="Evaluate a model on one split of the tensor data; write metrics.json and parity plots.",
    )
    return _configure(parser)


def _load_split(args: argparse.Namespace) -> list[TensorRecord]:
    from gmt_ase.training.data import ALL_SOURCES, load_records, split_by_material

    records = load_records(args.data_dir, tuple(args.sources or ALL_SOURCES))
    if args.split != "all":
        records = split_by_material(records, tuple(args.fractions), seed=args.seed)[args.split]
    return records[: args.limit] if args.limit is not None else records


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (metrics of empty groups) by None, recursively."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def missing_data_files(data_dir: Path) -> list[str]:
    """Return the data files (relative to ``data_dir``) that evaluation reads and that are not there."""
    from gmt_ase.training.sources import SOURCE_FILES

    return [name for name in SOURCE_FILES.values() if not (Path(data_dir) / name).is_file()]


def run(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` command; return the exit code."""
    from gmt_ase.inference.cache import load_predictor
    from gmt_ase.inference.io import CheckpointError

    missing = missing_data_files(args.data_dir)
    if missing:  # checked before the model is loaded
        print(
            f"gmt-ase evaluate: the labelled tensor data are not in {args.data_dir} (missing: {', '.join(missing)}). "
            "They are not shipped with the installed package: run from a clone of the gmt_ase repository "
            "(its data/ folder) or pass --data-dir DIR",
            file=sys.stderr,
        )
        return 2
    try:
        predictor = load_predictor(args.model, args.device)
    except CheckpointError as error:
        print(f"gmt-ase evaluate: {error}", file=sys.stderr)
        return 2
    records = _load_split(args)
    results = evaluate(predictor, records, batch_size=args.batch_size, symprec=args.symprec)
    metrics = results["metrics"]
    metrics["data"] = {
        "data_dir": str(args.data_dir),
        "split": args.split,
        "seed": args.seed,
        "fractions": list(args.fractions),
        "sources": args.sources,
        "limit": args.limit,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2, allow_nan=False) + "\n")
    if not args.no_plots:
        parity_plots(results, args.out)
    print(format_table(metrics))
    print(f"wrote {args.out / 'metrics.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gmt_ase.evaluation.evaluate``."""
    parser = argparse.ArgumentParser(prog="python -m gmt_ase.evaluation.evaluate", description=__doc__.splitlines()[0])
    args = _configure(parser).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
