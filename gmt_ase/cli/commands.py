"""Command line interface ``gmt-ase``: ``predict`` (batched, streaming, resumable) and ``info``.

Other modules add subcommands through :data:`EXTERNAL_SUBCOMMANDS`: the module is imported only when its
subcommand is invoked, and must define ``add_parser(subparsers) -> argparse.ArgumentParser``, which calls
``subparsers.add_parser(<name>, ...)`` and ``set_defaults(func=run)`` with ``run(args) -> int``.

``gmt-ase predict`` reads CIF, POSCAR and (multi-frame) extxyz files, folders and globs as a stream, predicts
``--batch-size`` structures at a time and appends one row per structure to the output (JSON lines, or CSV
for a ``.csv`` name). Rerunning the same command resumes: rows already predicted (same input file by its
absolute path, frame and ``--symprec``) are skipped and failed ones retried, except unchanged inputs that can
never succeed (see README, "Command line"). With ``--scheduler`` the chunks are predicted on the workers of a
running Dask cluster (:mod:`gmt_ase.distributed`), into the same output.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gmt_ase._version import __version__
from gmt_ase.core.symmetry import DEFAULT_SYMPREC

__all__ = ["EXTERNAL_SUBCOMMANDS", "build_parser", "main"]

#: Subcommands defined elsewhere: name -> (module with ``add_parser``, one-line help).
EXTERNAL_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gmt_ase.training.train", "train a model from tensor datasets"),
    "evaluate": ("gmt_ase.evaluation.evaluate", "evaluate a model on a labelled dataset"),
}


DESCRIPTION = "Predict dielectric, piezoelectric and elastic tensors of crystals with gmt_ase's equivariant network."
EPILOG = """examples:
  gmt-ase predict structures/ -o results.jsonl     rerun the same command to resume or retry errors
  gmt-ase predict structures/ -o results.csv --scheduler tcp://head:8786   on a Dask cluster
  gmt-ase info --model fast                         the model card (--json for machine-readable)
  gmt-ase train --help                              train a model

exit status of predict: 0 if at least one input structure has a prediction (from this run or an earlier
one), 1 if every input structure failed, 2 for bad arguments, inputs, output file, device, model or Dask
cluster, 130 if interrupted (Ctrl-C; rerun the same command to resume)."""


MODEL_HELP = "a shipped model ('default', 'fast') or a checkpoint path (./name for a file named like one)"


def _add_predict(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict tensors for structure files, folders or globs",
        description="Predict dielectric, piezoelectric and elastic tensors. Rerun the same command to resume: "
        "structures already predicted (same absolute path, frame and --symprec) are skipped, failed ones retried.",
    )
    parser.add_argument("paths", nargs="+", help="CIF/POSCAR/extxyz/traj/ASE-JSON files, folders or glob patterns")
    parser.add_argument("-r", "--recursive", action="store_true", help="also search the subfolders of folders")
    parser.add_argument("-o", "--output", type=_output_path, help="output .jsonl (default) or .csv; default stdout")
    parser.add_argument("--batch-size", type=int, default=64, help="structures per model call (default 64)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument(
        "--symprec", type=float, default=DEFAULT_SYMPREC, help=f"spglib tolerance in A (default {DEFAULT_SYMPREC})"
    )
    parser.add_argument("--model", default="default", help=MODEL_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="predict on the workers of a running Dask cluster: its scheduler address "
        '(tcp://host:8786) or scheduler file (.json); needs pip install "gmt_ase[distributed]"',
    )
    parser.set_defaults(func=run_predict)


def _output_path(text: str) -> Path:
    """``--output`` as a Path, refusing a name that ends like a folder (``results.csv/``)."""
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(
            f"{text!r} ends with a slash, so it names a folder; give a file name such as results.jsonl or results.csv"
        )
    return Path(text)


def _add_info(subparsers: Any) -> None:
    parser = subparsers.add_parser("info", help="show the model card: version, data, test metrics, limits")
    parser.add_argument("--model", default="default", help=MODEL_HELP)
    parser.add_argument("--json", action="store_true", help="print the card as JSON")
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
    parser = argparse.ArgumentParser(
        prog="gmt-ase", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    """Print the model card of ``args.model`` (text, or JSON with ``--json``); the network is not built."""
    from gmt_ase.cli._card import card_json, model_card, render_card
    from gmt_ase.inference.io import read_checkpoint_metadata

    metadata, sha = read_checkpoint_metadata(args.model)
    card = model_card(args.model, metadata, sha)
    print(card_json(card) if args.json else render_card(card))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Stream structures from ``args.paths`` through the model into ``args.output``; return the exit code.

    Everything that can be checked (arguments, inputs, output file, device, checkpoint) is checked before
    the network is built, and the network is built only if some structure is left to predict.
    """
    from gmt_ase.cli._output import ResumeState, check_output, read_resume_state
    from gmt_ase.cli._predict import PredictRun

    try:
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if not args.symprec > 0:
            raise ValueError("--symprec must be positive")
        paths, notes = resolve_inputs(args)
        if args.output:
            check_output(args.output)
        from gmt_ase.inference.cache import resolve_device
        from gmt_ase.inference.io import read_checkpoint_metadata

        device = resolve_device(args.device)
        metadata, sha = read_checkpoint_metadata(args.model)
        state = read_resume_state(args.output, sha) if args.output else ResumeState()
    except (OSError, ValueError) as error:  # OutputError and CheckpointError are ValueErrors
        print(f"gmt-ase: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        for note in notes:
            print(f"gmt-ase: note: {note}", file=sys.stderr)
    if not args.scheduler:
        return PredictRun(args, device, metadata, sha, state, total_files=len(paths)).execute(paths)
    from gmt_ase.distributed import ClusterError, connect

    try:
        client, own_client = connect(args.scheduler)
    except (ImportError, ClusterError) as error:
        print(f"gmt-ase: {error}", file=sys.stderr)
        return 2
    try:
        if not args.quiet:
            threads = client.nthreads()
            print(
                f"gmt-ase: note: predicting on the Dask cluster at {args.scheduler} ({len(threads)} workers, "
                f"{sum(threads.values())} threads)",
                file=sys.stderr,
            )
        return PredictRun(args, device, metadata, sha, state, total_files=len(paths), client=client).execute(paths)
    except ClusterError as error:  # the cluster failed, or its workers run another model
        print(f"gmt-ase: {error}; the rows written so far are kept: rerun to resume", file=sys.stderr)
        return 2
    finally:
        if own_client:
            client.close()


def resolve_inputs(args: argparse.Namespace) -> tuple[list[Path], list[str]]:
    """Input files of ``predict`` and notes for the user (see :func:`gmt_ase.cli._io.resolve_paths`)."""
    from gmt_ase.cli._io import resolve_paths

    return resolve_paths(args.paths, recursive=args.recursive)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gmt-ase``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    from gmt_ase.inference.io import CheckpointError

    try:
        return int(args.func(args) or 0)
    except CheckpointError as error:  # a checkpoint that reads but does not build
        print(f"gmt-ase: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside predict's own handling, e.g. while the model loads
        print("gmt-ase: interrupted (Ctrl-C)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
