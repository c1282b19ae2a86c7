"""One ``gmt-ase predict`` run: skip what is done, retry failures, predict the rest, summarise, exit status.

The network is built lazily, when the first structure that needs it arrives: a rerun with nothing left to
do only reads the inputs and the output file.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from gmt_ase.cli._io import InputItem, stream_structures
from gmt_ase.cli._output import ResumeState, compact_output, open_writer

__all__ = ["EXIT_ALL_FAILED", "EXIT_OK", "PredictRun"]

EXIT_OK = 0  #: at least one input structure has a prediction (now or from an earlier run), or there was none
EXIT_ALL_FAILED = 1  #: there were input structures and every one of them failed
_SHOWN_ERRORS = 5


class PredictRun:
    """State of one run: counts, the lazily built predictor and the progress bar.

    Parameters
    ----------
    args
        Parsed ``predict`` arguments.
    device
        Resolved torch device name.
    metadata, sha256
        The checkpoint's metadata and checksum (read without building the network).
    state
        What the output file already holds.
    total_files
        Number of input files (the progress bar's first total; multi-frame files add to it).
    """

    def __init__(self, args: argparse.Namespace, device: str, metadata: dict[str, Any], sha256: str,
                 state: ResumeState, total_files: int) -> None:
        self.args = args
        self.device = device
        self.metadata = metadata
        self.sha256 = sha256
        self.state = state
        self.total_files = total_files
        self.counts = {"new_ok": 0, "new_failed": 0, "retried_ok": 0, "retried_failed": 0, "skipped": 0}
        self.errors: list[str] = []
        self._predictor: Any = None

    def predictor(self) -> Any:
        """Return the loaded predictor, building it (with a message) on first use."""
        if self._predictor is None:
            from gmt_ase.inference.cache import load_predictor

            start = time.perf_counter()
            self._say(f"loading model {self.metadata.get('name')!r} (version {self.metadata.get('version')}) ...")
            self._predictor = load_predictor(self.args.model, self.device)
            self._say(f"model loaded in {time.perf_counter() - start:.1f} s")
        return self._predictor

    def _say(self, message: str) -> None:
        if not self.args.quiet:
            print(f"gmt-ase: {message}", file=sys.stderr)

    def execute(self, paths: list[Path]) -> int:
        """Predict every pending structure of ``paths`` into the output; return the exit status."""
        from tqdm.auto import tqdm

        show_bar = not self.args.quiet and sys.stderr.isatty()
        with tqdm(total=self.total_files, disable=not show_bar, unit="structure", file=sys.stderr) as bar, \
                open_writer(self.args.output) as write:
            for row, retry in self._rows(self._pending(stream_structures(paths), bar)):
                write(row)
                self._count(row, retry)
                bar.update(1)
        if self.counts["retried_ok"] + self.counts["retried_failed"] and self.args.output:
            compact_output(self.args.output)  # one row per input: a retried row replaces its error row
        self._summary()
        counts = self.counts
        succeeded = counts["new_ok"] + counts["retried_ok"] + counts["skipped"]
        failed = counts["new_failed"] + counts["retried_failed"]
        return EXIT_ALL_FAILED if failed and not succeeded else EXIT_OK

    def _pending(self, stream: Iterator[InputItem], bar: Any) -> Iterator[tuple[int, InputItem, bool]]:
        """(index, item, is a retry) for every structure not already predicted with this symprec."""
        for index, item in enumerate(stream):
            if item.frame > 0:  # a multi-frame file: one more structure than counted
                bar.total += 1
                bar.refresh()
            previous = self.state.last_ok.get((item.location, float(self.args.symprec)))
            if previous is True:
                self.counts["skipped"] += 1
                bar.update(1)
                continue
            yield index, item, previous is False

    def _rows(self, pending: Iterator[tuple[int, InputItem, bool]]) -> Iterator[tuple[dict[str, Any], bool]]:
        """(output row, is a retry) per pending structure, predicting ``--batch-size`` at a time."""
        from gmt_ase.predict import iter_predictions

        args = self.args
        while chunk := list(islice(pending, args.batch_size)):
            good = [(index, item) for index, item, _ in chunk if not isinstance(item.structure, Exception)]
            results: dict[int, dict[str, Any]] = {}
            if good:
                predicted = iter_predictions([item.structure for _, item in good], self.predictor(),
                                             symprec=args.symprec, batch_size=args.batch_size)
                results = {index: r.to_dict() for (index, _), r in zip(good, predicted, strict=True)}
            for index, item, retry in chunk:
                if isinstance(item.structure, Exception):
                    result = {"ok": False, "error_type": type(item.structure).__name__, "error": str(item.structure)}
                else:
                    result = results[index]
                row = {"source": item.source, **result, "index": index, "path": str(item.path.resolve()),
                       "frame": item.frame, "symprec": float(args.symprec), "model_sha256": self.sha256}
                yield row, retry

    def _count(self, row: dict[str, Any], retry: bool) -> None:
        self.counts[f"{'retried' if retry else 'new'}_{'ok' if row['ok'] else 'failed'}"] += 1
        if not row["ok"]:
            self.errors.append(f"{row['source']}: {row.get('error_type')}: {row.get('error')}")

    def _summary(self) -> None:
        counts = self.counts
        failed = counts["new_failed"] + counts["retried_failed"]
        if self.args.quiet and not failed:
            return
        for line in self.errors[:_SHOWN_ERRORS]:
            print(f"gmt-ase: error: {line}", file=sys.stderr)
        if len(self.errors) > _SHOWN_ERRORS:
            print(f"gmt-ase: ... and {len(self.errors) - _SHOWN_ERRORS} more errors (see the output rows)",
                  file=sys.stderr)
        new = counts["new_ok"] + counts["new_failed"]
        retried = counts["retried_ok"] + counts["retried_failed"]
        where = f" in {self.args.output}" if self.args.output else ""
        print(
            f"gmt-ase predict: {counts['new_ok'] + counts['retried_ok']} predicted, {failed} errors, "
            f"{counts['skipped']} skipped (already done{where}); {new} new, {retried} retried "
            f"({counts['retried_ok']} now ok)",
            file=sys.stderr,
        )
