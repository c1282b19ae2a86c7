"""Evaluate a model on labelled records: GMTNet metrics per target and crystal system, parity plots, CLI.

``gmt-ase evaluate --model default --data-dir data --split test --seed 0 --out reports/`` (or
``python -m gmt_ase.evaluate ...``) loads the records (:func:`gmt_ase.data.load_records`), takes one split
of :func:`gmt_ase.data.split_by_material`, predicts every structure once and writes ``metrics.json`` and
parity plots (PNG) to ``--out``.

Metrics (see :mod:`gmt_ase.metrics` for their definitions and the zero-target convention), per target:

* ``dielectric_electronic``, ``dielectric_ionic`` and ``dielectric_total`` (= electronic + ionic, for
  records with both), 3x3;
* ``piezoelectric`` 3x6: ``overall`` excludes zero true tensors; ``with_zeros`` adds them plus one
  zero-target sample for every centrosymmetric structure of the other sources (materials without a
  piezoelectric record), which a symmetric model gets exactly right;
* ``elastic`` 6x6, plus the MAE of K_VRH and G_VRH computed from the full tensors with pymatgen;
* ``elastic_binary``: K_VRH and G_VRH MAE against the scalar targets of the binaries.

Each target also has ``by_crystal_system`` (from the spglib space-group number at the prediction's
``symprec``) and ``by_source`` breakdowns; ``symmetry_violations`` counts predictions that break their
point group (:func:`gmt_ase.metrics.symmetry_violations`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gmt_ase.metrics import is_zero, kg_errors, moduli_vrh, stored_array, symmetry_violations, tensor_errors
from gmt_ase.symmetry import DEFAULT_SYMPREC

if TYPE_CHECKING:
    from gmt_ase.data import TensorRecord
    from gmt_ase.inference import TensorPredictor

__all__ = ["TENSOR_TARGETS", "add_parser", "crystal_system", "evaluate", "format_table", "main", "parity_plots", "run"]

#: Tensor targets evaluated with :func:`gmt_ase.metrics.tensor_errors`, in report order.
TENSOR_TARGETS = ("dielectric_electronic", "dielectric_ionic", "dielectric_total", "piezoelectric", "elastic")
_MODEL_OUTPUTS = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")
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


@dataclass(frozen=True)
class _Sample:
    """One predicted record: ids, symmetry and the float64 Cartesian predictions."""

    record: TensorRecord
    system: str
    centrosymmetric: bool
    operations: np.ndarray
    pred: dict[str, np.ndarray]


@dataclass
class _Pairs:
    """Stored-form (true, pred) arrays of one target with their labels."""

    true: list[np.ndarray]
    pred: list[np.ndarray]
    material_id: list[str]
    source: list[str]
    crystal_system: list[str]

    def add(self, sample: _Sample, true: np.ndarray, pred: np.ndarray) -> None:
        self.true.append(np.asarray(true, dtype=float))
        self.pred.append(np.asarray(pred, dtype=float))
        self.material_id.append(sample.record.material_id)
        self.source.append(sample.record.source)
        self.crystal_system.append(sample.system)

    def subset(self, keep: Sequence[bool]) -> _Pairs:
        def pick(values: list) -> list:
            return [v for v, k in zip(values, keep, strict=True) if k]

        return _Pairs(*(pick(values) for values in self._fields()))

    def joined(self, other: _Pairs) -> _Pairs:
        return _Pairs(*(a + b for a, b in zip(self._fields(), other._fields(), strict=True)))

    def _fields(self) -> tuple[list, ...]:
        return self.true, self.pred, self.material_id, self.source, self.crystal_system

    def as_arrays(self) -> dict[str, Any]:
        return {
            "true": np.array(self.true),
            "pred": np.array(self.pred),
            "material_id": self.material_id,
            "source": self.source,
            "crystal_system": self.crystal_system,
        }


def _new_pairs() -> _Pairs:
    return _Pairs([], [], [], [], [])


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


def _collect(samples: Sequence[_Sample]) -> tuple[dict[str, _Pairs], dict[str, _Pairs]]:
    """Per-target (true, pred) pairs of the tensors and of the (K, G) moduli."""
    pairs: dict[str, _Pairs] = defaultdict(_new_pairs)
    for sample in samples:
        targets, pred = sample.record.targets, sample.pred
        for name in _MODEL_OUTPUTS:
            if name in targets:
                pairs[name].add(sample, stored_array(targets[name]), stored_array(pred[name]))
        if "dielectric_electronic" in targets and "dielectric_ionic" in targets:
            true_total = targets["dielectric_electronic"] + targets["dielectric_ionic"]
            pred_total = pred["dielectric_electronic"] + pred["dielectric_ionic"]
            pairs["dielectric_total"].add(sample, true_total, pred_total)
    _add_piezo_zeros(samples, pairs)
    return dict(pairs), _collect_moduli(samples)


def _add_piezo_zeros(samples: Sequence[_Sample], pairs: dict[str, _Pairs]) -> None:
    """Add one zero-target sample per centrosymmetric material that has no piezoelectric record."""
    piezo_ids = {s.record.material_id for s in samples if "piezoelectric" in s.record.targets}
    zeros = _new_pairs()
    for sample in samples:
        material_id = sample.record.material_id
        if sample.centrosymmetric and material_id not in piezo_ids:
            zeros.add(sample, np.zeros((3, 6)), stored_array(sample.pred["piezoelectric"]))
            piezo_ids.add(material_id)
    pairs["piezoelectric_zeros"] = zeros


def _collect_moduli(samples: Sequence[_Sample]) -> dict[str, _Pairs]:
    """(K_VRH, G_VRH) pairs from full elastic targets (``elastic``) and from the binaries' scalars."""
    moduli: dict[str, _Pairs] = defaultdict(_new_pairs)
    for sample in samples:
        targets = sample.record.targets
        if "elastic" in targets:
            moduli["elastic"].add(sample, np.array(moduli_vrh(targets["elastic"])), _pred_moduli(sample))
        elif "k_vrh" in targets and "g_vrh" in targets:
            true_kg = np.array([float(targets["k_vrh"]), float(targets["g_vrh"])])
            moduli["elastic_binary"].add(sample, true_kg, _pred_moduli(sample))
    return dict(moduli)


def _pred_moduli(sample: _Sample) -> np.ndarray:
    return np.array(moduli_vrh(sample.pred["elastic"]))


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
        A loaded :class:`gmt_ase.inference.TensorPredictor`.
    records
        Labelled records (:class:`gmt_ase.data.TensorRecord`) of any sources.
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


def _parity_axes(ax: Any, true: np.ndarray, pred: np.ndarray, title: str, unit: str) -> None:
    ax.scatter(true.ravel(), pred.ravel(), s=4, alpha=0.5)
    both = np.concatenate([true.ravel(), pred.ravel()])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    ax.plot([low, high], [low, high], color="k", linewidth=0.8)
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"DFT{suffix}")
    ax.set_ylabel(f"predicted{suffix}")
    ax.set_title(title)


def _save_parity(path: Path, panels: list[tuple[np.ndarray, np.ndarray, str, str]]) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(4.2 * len(panels), 4.0), layout="constrained")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _parity_axes(ax, *panel)
    fig.savefig(path, dpi=120)


_UNITS = {"piezoelectric": "C/m$^2$", "elastic": "GPa"}


def parity_plots(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write one parity plot (PNG) per target of ``results`` (from :func:`evaluate`) into ``out_dir``.

    Tensor plots show every entry of the stored arrays; moduli plots show K_VRH and G_VRH side by side.

    Returns
    -------
    list of pathlib.Path
        The files written.

    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, pair in results["pairs"].items():
        if name == "piezoelectric_zeros" or len(pair["true"]) == 0:
            continue
        path = out / f"parity_{name}.png"
        title = f"{name} (N={len(pair['true'])})"
        _save_parity(path, [(pair["true"], pair["pred"], title, _UNITS.get(name, ""))])
        written.append(path)
    for name, pair in results["moduli"].items():
        if len(pair["true"]) == 0:
            continue
        true, pred = pair["true"], pair["pred"]
        path = out / f"parity_{name}_kg.png"
        _save_parity(
            path,
            [(true[:, i], pred[:, i], f"{name}: {m} (N={len(true)})", "GPa") for i, m in enumerate(("K_VRH", "G_VRH"))],
        )
        written.append(path)
    return written


def format_table(metrics: dict[str, Any]) -> str:
    """Format the overall metrics as a short plain-text table."""
    lines = [f"{'target':<28}{'N':>6}{'Fnorm':>10}{'EwT25':>8}{'EwT10':>8}{'EwT5':>8}{'MAE':>10}"]
    for name, target in metrics["targets"].items():
        rows = [(name, target.get("overall"))]
        if "with_zeros" in target:
            rows.append((f"{name} (with zeros)", target["with_zeros"]["overall"]))
        for label, row in rows:
            if row is not None and "fnorm" in row:
                lines.append(
                    f"{label:<28}{row['count']:>6}{row['fnorm']:>10.3f}{100 * row['ewt25']:>7.1f}%"
                    f"{100 * row['ewt10']:>7.1f}%{100 * row['ewt5']:>7.1f}%{row['mae']:>10.3f}"
                )
        if "kg" in target:
            kg = target["kg"]["overall"]
            label = f"{name} K/G MAE (GPa)"
            lines.append(f"{label:<28}{kg['count']:>6}   K {kg['k_vrh_mae']:.2f}, G {kg['g_vrh_mae']:.2f}")
    violations = sum(metrics["symmetry_violations"].values())
    skipped = sum(metrics["records"]["skipped"].values())
    lines.append(f"symmetry violations: {violations}; skipped records: {skipped}")
    return "\n".join(lines)


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
    from gmt_ase.data import ALL_SOURCES, load_records, split_by_material

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


def run(args: argparse.Namespace) -> int:
    """Run the ``evaluate`` command; return the exit code."""
    from gmt_ase.calculator import load_predictor
    from gmt_ase.io import CheckpointError

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
    """Entry point of ``python -m gmt_ase.evaluate``."""
    parser = argparse.ArgumentParser(prog="python -m gmt_ase.evaluate", description=__doc__.splitlines()[0])
    args = _configure(parser).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
