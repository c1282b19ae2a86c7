"""One ``gmt-ase predict`` run: skip what is done, retry failures, predict the rest, summarise, exit status.

The model is loaded lazily, when the first structure that needs it arrives: a rerun with nothing left to
do, or only inputs that can never succeed (see :mod:`gmt_ase.cli._output`), only reads the inputs and the
output file. The progress bar starts once the model is loaded, so its rate and ETA are the prediction's.
With a Dask ``client``, chunks of ``--batch-size`` structures are predicted on the cluster's workers
(:mod:`gmt_ase.distributed`) and their rows written in the same order as in-process.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from gmt_ase.cli._io import InputItem, stream_structures
from gmt_ase.cli._output import ResumeState, compact_output, input_stamp, open_writer

__all__ = ["EXIT_ALL_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "TYPICAL_LOAD", "PredictRun", "permanent_errors"]

EXIT_OK = 0  #: at least one input structure has a prediction (now or from an earlier run), or there was none
EXIT_ALL_FAILED = 1  #: there were input structures and every one of them failed
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT), as shells report it
#: Time to load a model (benchmarks/startup.py: about 5 s on an idle CPU; 13-21 s measured at load average 9).
TYPICAL_LOAD = "typically 5-20 s on a CPU, more on a busy machine"
_SHOWN_ERRORS = 5

Chunk = list[tuple[int, InputItem, bool]]


def permanent_errors() -> frozenset[str]:
    """Error types that the same input always raises again: unreadable files and structures the model refuses."""
    from gmt_ase.cli._io import StructureReadError
    from gmt_ase.graph.validation import InvalidStructureError

    names, todo = set(), [InvalidStructureError, StructureReadError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(names)


class PredictRun:
    """State of one run: counts, the lazily loaded model, the progress bar and the optional Dask client.

    Parameters
    ----------
    args
        Parsed ``predict`` arguments.
    device
        Resolved torch device name (of this process; Dask workers resolve ``args.device`` themselves).
    metadata, sha256
        The checkpoint's metadata and checksum (read without building the network).
    state
        What the output file already holds.
    total_files
        Number of input files (the progress bar's first total; multi-frame files add to it).
    client
        A ``dask.distributed.Client`` to predict on, or None to predict in this process.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        device: str,
        metadata: dict[str, Any],
        sha256: str,
        state: ResumeState,
        total_files: int,
        client: Any = None,
    ) -> None:
        self.args = args
        self.device = device
        self.metadata = metadata
        self.sha256 = sha256
        self.state = state
        self.client = client
        self.total = total_files
        self.counts = {"new_ok": 0, "new_failed": 0, "retried_ok": 0, "retried_failed": 0, "skipped": 0, "permanent": 0}
        self.errors: list[str] = []
        self._permanent = permanent_errors()
        self._predictor: Any = None
        self._bar: Any = None
        self._done = 0  # structures handled before the bar exists

    def _model_name(self) -> str:
        return f"model {self.metadata.get('name')!r} (version {self.metadata.get('version')})"

    def predictor(self) -> Any:
        """Return the loaded predictor, loading it (announced, before the progress bar starts) on first use."""
        if self._predictor is None:
            from gmt_ase.inference.cache import load_predictor

            start = time.perf_counter()
            self._say(f"loading {self._model_name()}; {TYPICAL_LOAD} ...")
            self._predictor = load_predictor(self.args.model, self.device)
            self._say(f"model loaded in {time.perf_counter() - start:.1f} s")
            self._start_bar()
        return self._predictor

    def _warm_cluster(self) -> None:
        """Load the model on every current Dask worker once (workers that join later load it at their first chunk)."""
        if self._predictor is not None:
            return
        from gmt_ase.distributed import warm_up

        workers = self.client.nthreads()
        start = time.perf_counter()
        self._say(f"loading {self._model_name()} on {len(workers)} Dask worker(s), once each; {TYPICAL_LOAD} ...")
        self.client.run(warm_up, self._worker_model(), self.args.device)
        self._say(f"model loaded on the workers in {time.perf_counter() - start:.1f} s")
        self._predictor = "on the cluster"
        self._start_bar()

    def _worker_model(self) -> str:
        from gmt_ase.inference.io import model_source

        return str(model_source(self.args.model))

    def _say(self, message: str) -> None:
        if not self.args.quiet:
            print(f"gmt-ase: {message}", file=sys.stderr)

    def _start_bar(self) -> None:
        from tqdm.auto import tqdm

        show = not self.args.quiet and sys.stderr.isatty()
        self._bar = tqdm(
            total=max(self.total, self._done), initial=self._done, disable=not show, unit="structure", file=sys.stderr
        )

    def _advance(self) -> None:
        if self._bar is None:
            self._done += 1
        else:
            self._bar.update(1)

    def execute(self, paths: list[Path]) -> int:
        """Predict every pending structure of ``paths`` into the output; return the exit status."""
        interrupted = False
        try:
            with open_writer(self.args.output) as write:
                for row, retry in self._rows(self._pending(stream_structures(paths))):
                    write(row)
                    self._count(row, retry)
                    self._advance()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if self._bar is not None:
                self._bar.close()
        if self.counts["retried_ok"] + self.counts["retried_failed"] and self.args.output:
            compact_output(self.args.output)  # one row per input: a retried row replaces its error row
        if interrupted:
            written = sum(self.counts[k] for k in ("new_ok", "new_failed", "retried_ok", "retried_failed"))
            where = f" to {self.args.output}" if self.args.output else ""
            print(
                f"gmt-ase: interrupted (Ctrl-C) after writing {written} row(s){where}; the output is complete "
                "up to there: rerun the same command to resume",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        self._summary()
        counts = self.counts
        succeeded = counts["new_ok"] + counts["retried_ok"] + counts["skipped"]
        failed = counts["new_failed"] + counts["retried_failed"] + counts["permanent"]
        return EXIT_ALL_FAILED if failed and not succeeded else EXIT_OK

    def _pending(self, stream: Iterator[InputItem]) -> Iterator[tuple[int, InputItem, bool]]:
        """(index, item, is a retry) for every structure not done, nor failed for good, with this symprec."""
        for index, item in enumerate(stream):
            if item.frame > 0:  # a multi-frame file: one more structure than counted
                self.total += 1
                if self._bar is not None:
                    self._bar.total = max(self._bar.total, self.total)
                    self._bar.refresh()
            key = (item.location, float(self.args.symprec))
            previous = self.state.last_ok.get(key)
            if previous is True:
                self.counts["skipped"] += 1
            elif (
                previous is False
                and key in self.state.permanent
                and self.state.permanent[key] == input_stamp(item.path)
            ):
                self.counts["permanent"] += 1  # the same unchanged input would fail the same way
            else:
                yield index, item, previous is False
                continue
            self._advance()

    def _chunks(self, pending: Iterator[tuple[int, InputItem, bool]]) -> Iterator[Chunk]:
        while chunk := list(islice(pending, self.args.batch_size)):
            yield chunk

    def _rows(self, pending: Iterator[tuple[int, InputItem, bool]]) -> Iterator[tuple[dict[str, Any], bool]]:
        """(output row, is a retry) per pending structure, predicting ``--batch-size`` at a time."""
        predicted = self._on_cluster if self.client is not None else self._in_process
        for chunk, results in predicted(self._chunks(pending)):
            for index, item, retry in chunk:
                if isinstance(item.structure, Exception):
                    result = {"ok": False, "error_type": type(item.structure).__name__, "error": str(item.structure)}
                else:
                    result = results[index]
                permanent = None if result["ok"] else result.get("error_type") in self._permanent
                row = {
                    "source": item.source,
                    **result,
                    "index": index,
                    "path": str(item.path.resolve()),
                    "frame": item.frame,
                    "symprec": float(self.args.symprec),
                    "model_sha256": self.sha256,
                    "permanent": permanent,
                    "input_stamp": input_stamp(item.path),
                }
                yield row, retry

    @staticmethod
    def _good(chunk: Chunk) -> list[tuple[int, Any]]:
        return [(index, item.structure) for index, item, _ in chunk if not isinstance(item.structure, Exception)]

    def _in_process(self, chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, dict[int, dict[str, Any]]]]:
        from gmt_ase.predict import iter_predictions

        for chunk in chunks:
            good = self._good(chunk)
            results: dict[int, dict[str, Any]] = {}
            if good:
                predicted = iter_predictions(
                    [structure for _, structure in good],
                    self.predictor(),
                    symprec=self.args.symprec,
                    batch_size=self.args.batch_size,
                )
                results = {index: r.to_dict() for (index, _), r in zip(good, predicted, strict=True)}
            yield chunk, results

    def _on_cluster(self, chunks: Iterator[Chunk]) -> Iterator[tuple[Chunk, dict[int, dict[str, Any]]]]:
        from gmt_ase.distributed import ClusterError, map_chunks, predict_chunk

        task = partial(
            predict_chunk,
            model=self._worker_model(),
            device=self.args.device,
            dtype="float32",
            symprec=float(self.args.symprec),
            batch_size=self.args.batch_size,
        )

        def tasks() -> Iterator[tuple[tuple[Chunk, list[tuple[int, Any]]], tuple[Any, ...] | None]]:
            for chunk in chunks:
                good = self._good(chunk)
                if good:
                    self._warm_cluster()
                yield (chunk, good), ([structure for _, structure in good],) if good else None

        try:
            for (chunk, good), results in map_chunks(self.client, tasks(), task, expected_sha256=self.sha256):
                yield chunk, {index: r.to_dict() for (index, _), r in zip(good, results, strict=True)}
        except (ClusterError, KeyboardInterrupt):
            raise
        except Exception as error:  # a worker died, or lacks gmt_ase or the checkpoint
            raise ClusterError(f"a task failed on the Dask cluster: {type(error).__name__}: {error}") from error

    def _count(self, row: dict[str, Any], retry: bool) -> None:
        self.counts[f"{'retried' if retry else 'new'}_{'ok' if row['ok'] else 'failed'}"] += 1
        if not row["ok"]:
            self.errors.append(f"{row['source']}: {row.get('error_type')}: {row.get('error')}")

    def _summary(self) -> None:
        counts = self.counts
        failed = counts["new_failed"] + counts["retried_failed"] + counts["permanent"]
        if self.args.quiet and not failed:
            return
        for line in self.errors[:_SHOWN_ERRORS]:
            print(f"gmt-ase: error: {line}", file=sys.stderr)
        if len(self.errors) > _SHOWN_ERRORS:
            print(
                f"gmt-ase: ... and {len(self.errors) - _SHOWN_ERRORS} more errors (see the output rows)",
                file=sys.stderr,
            )
        new = counts["new_ok"] + counts["new_failed"]
        retried = counts["retried_ok"] + counts["retried_failed"]
        where = f" in {self.args.output}" if self.args.output else ""
        permanent = (
            (
                f"; {counts['permanent']} not retried (unreadable or refused inputs, unchanged since they "
                "failed: fix the file to retry; see the output rows)"
            )
            if counts["permanent"]
            else ""
        )
        print(
            f"gmt-ase predict: {counts['new_ok'] + counts['retried_ok']} predicted, {failed} errors, "
            f"{counts['skipped']} skipped (already done{where}); {new} new, {retried} retried "
            f"({counts['retried_ok']} now ok){permanent}",
            file=sys.stderr,
        )
