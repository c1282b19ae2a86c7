"""Command line interface ``gmt-ase``: ``predict`` (batched, streaming, resumable) and ``info``.

Other modules add subcommands through :data:`EXTERNAL_SUBCOMMANDS`: the module is imported only when its
subcommand is invoked, and must define ``add_parser(subparsers) -> argparse.ArgumentParser``, which calls
``subparsers.add_parser(<name>, ...)`` and ``set_defaults(func=run)`` with ``run(args) -> int``.

``gmt-ase predict`` reads CIF, POSCAR and (multi-frame) extxyz files, folders and globs as a stream, predicts
``--batch-size`` structures at a time and appends one row per structure to the output (JSON lines, or CSV
for a ``.csv`` name). Each row carries a stable key ``source = "<path>@<frame>"``; rerunning the same
command skips every source already in the output, so an interrupted run resumes without recomputation.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from gmt_ase._version import __version__

__all__ = ["EXTERNAL_SUBCOMMANDS", "build_parser", "main"]

#: Subcommands defined elsewhere: name -> (module with ``add_parser``, one-line help).
EXTERNAL_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gmt_ase.train", "train a model from tensor datasets"),
    "evaluate": ("gmt_ase.evaluate", "evaluate a model on a labelled dataset"),
}


def _add_predict(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict tensors for structure files, folders or globs",
        description="Predict dielectric, piezoelectric and elastic tensors (resumable: rerun to continue).",
    )
    parser.add_argument("paths", nargs="+", help="CIF/POSCAR/extxyz files, folders or glob patterns")
    parser.add_argument("-o", "--output", type=Path, help="output .jsonl (default) or .csv; default stdout")
    parser.add_argument("--batch-size", type=int, default=64, help="structures per model call (default 64)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--symprec", type=float, default=1e-2, help="spglib tolerance in A (default 0.01)")
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    parser.set_defaults(func=run_predict)


def _add_info(subparsers: Any) -> None:
    parser = subparsers.add_parser("info", help="print the model card as JSON")
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.set_defaults(func=run_info)


def _add_external(subparsers: Any, name: str, module_name: str, help_text: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        parser = subparsers.add_parser(name, help=help_text)

        def unavailable(args: argparse.Namespace) -> int:
            message = f"gmt-ase: the '{name}' command is not available ({module_name} is missing)"
            print(message, file=sys.stderr)
            return 2

        parser.set_defaults(func=unavailable)
        return
    module.add_parser(subparsers)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser; only the external subcommand named ``command`` is imported."""
    parser = argparse.ArgumentParser(prog="gmt-ase", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gmt-ase {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(subparsers)
    _add_info(subparsers)
    for name, (module_name, help_text) in EXTERNAL_SUBCOMMANDS.items():
        if name == command:
            _add_external(subparsers, name, module_name, help_text)
        else:  # placeholder for the help listing; the real parser is loaded when invoked
            subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def run_info(args: argparse.Namespace) -> int:
    """Print the model card, cutoff and species of ``args.model`` as JSON."""
    from gmt_ase.calculator import load_predictor

    predictor = load_predictor(args.model, args.device)
    card = {**predictor.card, "cutoff": float(predictor.cutoff), "species": sorted(predictor.species)}
    print(json.dumps(card, indent=2, default=str))
    return 0


def _prediction_rows(
    stream: Iterator[tuple[int, str, Any]], predictor: Any, args: argparse.Namespace, sha: str | None
) -> Iterator[dict[str, Any]]:
    """Rows (source, index, model_sha256, result fields) for a stream of (index, source, Atoms | error)."""
    from gmt_ase.predict import iter_predictions

    while chunk := list(islice(stream, args.batch_size)):
        good = [item for item in chunk if not isinstance(item[2], Exception)]
        results = iter_predictions(
            [atoms for _, _, atoms in good], predictor, symprec=args.symprec, batch_size=args.batch_size
        )
        by_index = {index: result.to_dict() for (index, _, _), result in zip(good, results, strict=True)}
        for index, source, item in chunk:
            if isinstance(item, Exception):
                row = {"ok": False, "error_type": type(item).__name__, "error": f"cannot read: {item}"}
            else:
                row = by_index[index]
            yield {**row, "source": source, "index": index, "model_sha256": sha}


def run_predict(args: argparse.Namespace) -> int:
    """Stream structures from ``args.paths`` through the model into ``args.output``; return the exit code."""
    from tqdm.auto import tqdm

    from gmt_ase._cli_io import open_writer, read_done, resolve_paths, stream_structures
    from gmt_ase.calculator import load_predictor

    try:
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        paths = resolve_paths(args.paths)
    except (FileNotFoundError, ValueError) as error:
        print(f"gmt-ase: {error}", file=sys.stderr)
        return 2
    predictor = load_predictor(args.model, args.device)
    sha = predictor.card.get("sha256")
    done = read_done(args.output, sha) if args.output else set()
    counts = {"predicted": 0, "failed": 0, "skipped": 0}
    pending = _skip_done(stream_structures(paths), done, counts)
    show_bar = not args.quiet and sys.stderr.isatty()
    bar = tqdm(disable=not show_bar, unit="structure", file=sys.stderr)
    with open_writer(args.output) as write, bar:
        for row in _prediction_rows(pending, predictor, args, sha):
            write(row)
            counts["predicted" if row["ok"] else "failed"] += 1
            bar.update(1)
    if not args.quiet or counts["failed"]:
        where = f" (already in {args.output})" if args.output else ""
        print(
            f"gmt-ase predict: {counts['predicted']} predicted, {counts['failed']} errors, "
            f"{counts['skipped']} skipped{where}",
            file=sys.stderr,
        )
    return 0


def _skip_done(
    stream: Iterator[tuple[str, Any]], done: set[str], counts: dict[str, int]
) -> Iterator[tuple[int, str, Any]]:
    for index, (source, item) in enumerate(stream):
        if source in done:
            counts["skipped"] += 1
        else:
            yield index, source, item


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gmt-ase``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    from gmt_ase.io import CheckpointError

    try:
        return int(args.func(args) or 0)
    except CheckpointError as error:
        print(f"gmt-ase: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
