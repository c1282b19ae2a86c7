"""The output file of ``gmt-ase predict``: refuse foreign files, read what is done, append, compact.

Rows are appended and flushed one by one, so a killed run leaves at most one partial last line, which
:func:`read_resume_state` trims before the run resumes. Every check here runs before the model is loaded.

Resume key of a row: the input's resolved absolute path and frame, and the ``symprec`` used; one output
file holds the results of one model (its sha256 is checked). A key whose last row is an error is retried,
unless the error is ``permanent`` (the file cannot be read, or the model refuses the structure: the same
input always fails again) and the file still has the ``input_stamp`` (size and modification time) of that
row: then a rerun skips it without loading the model.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gmt_ase.cli._io import csv_columns, csv_layouts, flatten_row

__all__ = [
    "OutputError",
    "ResumeState",
    "check_output",
    "compact_output",
    "input_stamp",
    "open_writer",
    "read_resume_state",
    "row_key",
]

#: A gmt-ase row starts with this (JSON lines); a partial last line is trimmed only if it does.
ROW_PREFIX = '{"source": '
_ROW_KEYS = ("source", "ok", "model_sha256")


class OutputError(ValueError):
    """The output path cannot be used: missing folder, or an existing file that is not a gmt-ase output."""


@dataclass
class ResumeState:
    """What an existing output holds: the last ``ok`` per resume key, and whether a partial line was cut.

    ``permanent`` maps the keys whose last row is a permanent failure to the input stamp of that row.
    """

    last_ok: dict[tuple[str, float | None], bool] = field(default_factory=dict)
    permanent: dict[tuple[str, float | None], str] = field(default_factory=dict)
    trimmed_partial_line: bool = False


def input_stamp(path: Path) -> str | None:
    """``"<size>:<mtime_ns>"`` of an input file (None if it cannot be read): a changed file is retried."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def row_key(row: dict[str, Any]) -> tuple[str, float | None]:
    """Resume key ``("<absolute path>@<frame>", symprec)`` of a JSON or CSV row (rows of older versions too)."""
    if row.get("path") not in (None, ""):
        where = f"{row['path']}@{int(row['frame'])}"
    else:  # written by gmt_ase <= 0.1: relative "<path>@<frame>"
        name, _, frame = str(row["source"]).rpartition("@")
        where = f"{Path(name).resolve()}@{frame}"
    symprec = row.get("symprec") or (row.get("symmetry") or {}).get("symprec")
    return where, None if symprec in (None, "") else float(symprec)


def check_output(path: Path) -> None:
    """Refuse, untouched, an output path that gmt-ase must not write to.

    Raises
    ------
    OutputError
        If the folder does not exist, the path is a folder, or the file exists and is not a gmt-ase output.

    """
    if path.is_dir():
        raise OutputError(f"output {path} is a folder; give a file name (.jsonl or .csv)")
    if not path.parent.is_dir():
        raise OutputError(f"output folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"output {path} is not writable")
    if path.exists() and path.stat().st_size:
        for _ in _rows(path):  # reads every line: a foreign or damaged file fails here, untouched
            pass


def _text_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise OutputError(f"{path} exists and is a binary file, not a gmt-ase output; refusing to write to it")
    return text.splitlines(keepends=True)


def _foreign(path: Path, line: int, what: str) -> OutputError:
    return OutputError(
        f"{path} line {line}: {what}; not a gmt-ase output (or damaged): refusing to write to it. "
        "Use a new output file, or remove the line if the rest is yours"
    )


def _rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every complete row; raises :class:`OutputError` for anything foreign."""
    lines = _text_lines(path)
    partial = bool(lines) and not lines[-1].endswith("\n")
    if partial:
        lines = lines[:-1]
    if _is_csv(path):
        yield from _csv_rows(path, lines, partial)
        return
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not all(key in row for key in _ROW_KEYS):
            raise _foreign(path, number, "not a gmt-ase result row (JSON object with source, ok, model_sha256)")
        yield number, row
    if partial and not (lines or _tail(path).startswith(ROW_PREFIX)):
        raise _foreign(path, 1, "not a gmt-ase result row")


def _tail(path: Path) -> str:
    data = path.read_bytes()
    return data[data.rfind(b"\n") + 1 :].decode("utf-8", "replace")


def _csv_rows(path: Path, lines: list[str], partial: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    header = next(csv.reader(lines[:1] or [_tail(path)]), [])
    if header not in csv_layouts():
        raise _foreign(path, 1, "the CSV header is not that of this gmt-ase version")
    width = len(header)
    reader = csv.reader(lines[1:])
    for values in reader:
        if len(values) != width or values[2] not in ("True", "False"):
            raise _foreign(path, reader.line_num + 1, f"a row with {len(values)} fields instead of {width}")
        yield reader.line_num + 1, dict(zip(header, values, strict=True))


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return next(csv.reader(handle), [])


def _trim_partial_line(path: Path) -> bool:
    """Drop a last line without newline (left by a killed run); return whether there was one."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])
        return True
    return False


def read_resume_state(path: Path, model_sha256: str | None) -> ResumeState:
    """Read the done keys of an existing output (refusing a foreign one) and trim a partial last line.

    Raises
    ------
    OutputError
        For a foreign file, or rows written by another model.

    """
    state = ResumeState()
    if not path.exists() or not path.stat().st_size:
        return state
    for number, row in _rows(path):  # raises OutputError for a foreign or damaged file, before any change
        sha = row.get("model_sha256") or None
        if sha != model_sha256:
            raise OutputError(
                f"{path} line {number} holds results of another model (sha256 {sha}); "
                "use a new output file for this model"
            )
        key = row_key(row)
        state.last_ok[key] = row.get("ok") in (True, "True")
        state.permanent.pop(key, None)
        if row.get("permanent") in (True, "True") and row.get("input_stamp"):
            state.permanent[key] = str(row["input_stamp"])
    state.trimmed_partial_line = _trim_partial_line(path)
    return state


def compact_output(path: Path) -> int:
    """Keep one row per resume key, the last one, at the place of the first (atomically); return rows dropped."""
    rows = list(_rows(path))
    first: dict[tuple[str, float | None], int] = {}
    last: dict[tuple[str, float | None], int] = {}
    for number, row in rows:
        first.setdefault(row_key(row), number)
        last[row_key(row)] = number
    if len(last) == len(rows):
        return 0
    lines = _text_lines(path)  # one line per row (see flatten_row), so line numbers index rows
    header = lines[:1] if _is_csv(path) else []
    order = sorted(last, key=first.__getitem__)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(header + [lines[last[key] - 1] for key in order]))
    tmp.replace(path)
    return len(rows) - len(last)


@contextlib.contextmanager
def open_writer(path: Path | None) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Yield ``write(row)`` appending JSON lines (or CSV rows for ``*.csv``) to ``path``, or stdout."""
    is_csv = path is not None and _is_csv(path)
    new_file = path is None or not path.exists() or path.stat().st_size == 0
    with contextlib.ExitStack() as stack:
        handle = sys.stdout if path is None else stack.enter_context(path.open("a", newline=""))
        if is_csv:
            header = csv_columns() if new_file else _csv_header(path)  # an older layout keeps its own columns
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            if new_file:
                writer.writeheader()

            def write(row: dict[str, Any]) -> None:
                writer.writerow(flatten_row(row))
                handle.flush()
        else:

            def write(row: dict[str, Any]) -> None:
                handle.write(json.dumps(row) + "\n")
                handle.flush()

        yield write
