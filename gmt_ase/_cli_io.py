"""Files for ``gmt-ase predict``: input discovery and streaming, resumable JSON-lines and CSV output.

Input: files, folders (their structure files, sorted) and glob patterns; every frame of every file is one
structure with the key ``"<path>@<frame>"``. Output rows are appended and flushed one by one, so a killed
run leaves at most one partial last line, which :func:`read_done` trims before the run resumes.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from gmt_ase.derived import DERIVED_UNITS
from gmt_ase.results import TENSOR_UNITS
from gmt_ase.tensors import VOIGT_PAIRS

__all__ = ["csv_columns", "flatten_row", "open_writer", "read_done", "resolve_paths", "stream_structures"]

_FORMATS = {".cif": "cif", ".vasp": "vasp", ".poscar": "vasp", ".extxyz": "extxyz", ".xyz": "extxyz"}
_VASP_NAMES = ("POSCAR", "CONTCAR")
_AXES = "xyz"
_VOIGT_LABELS = tuple(_AXES[i] + _AXES[j] for i, j in VOIGT_PAIRS)  # xx yy zz yz xz xy
_SUFFIX = {"GPa": "_GPa", "C/m^2": "_C_per_m2", "pC/N": "_pC_per_N", "1": "", "bool": ""}
_META = ("source", "index", "ok", "error_type", "error", "model_sha256",
         "space_group", "space_group_number", "point_group", "symprec")


def _ase_format(path: Path) -> str | None:
    if path.name.upper().startswith(_VASP_NAMES):
        return "vasp"
    return _FORMATS.get(path.suffix.lower())


def _is_structure_file(path: Path) -> bool:
    return path.is_file() and _ase_format(path) is not None


def resolve_paths(patterns: Sequence[str]) -> list[Path]:
    """Expand files, folders (their structure files, sorted) and globs, keeping order and dropping repeats.

    Raises
    ------
    FileNotFoundError
        If a pattern matches nothing.

    """
    paths: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if _is_structure_file(p))
        elif glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            found = [path] if path.is_file() else []
        if not found:
            raise FileNotFoundError(f"no structure files found for {pattern!r}")
        paths.extend(p for p in found if p not in paths)
    return paths


def stream_structures(paths: Sequence[Path]) -> Iterator[tuple[str, Any]]:
    """Yield ``(source, Atoms)`` for every frame of every file, ``(source, exception)`` for a bad one.

    Files are read lazily with ``ase.io.iread``, so multi-frame files never sit in memory whole.
    """
    import ase.io

    for path in paths:
        frame = 0
        try:
            for atoms in ase.io.iread(path, index=":", format=_ase_format(path)):
                yield f"{path}@{frame}", atoms
                frame += 1
            if frame == 0:
                raise ValueError("file contains no structures")
        except Exception as error:  # noqa: BLE001 - a bad file becomes one error row, the run goes on
            yield f"{path}@{frame}", error


def _tensor_columns() -> list[str]:
    columns = []
    for name in ("dielectric_electronic", "dielectric_ionic", "dielectric_total"):
        columns += [f"{name}_{label}" for label in _VOIGT_LABELS]
    suffix = _SUFFIX[TENSOR_UNITS["piezoelectric"]]
    columns += [f"piezoelectric_e{i + 1}{j + 1}{suffix}" for i in range(3) for j in range(6)]
    suffix = _SUFFIX[TENSOR_UNITS["elastic"]]
    columns += [f"elastic_C{i + 1}{j + 1}{suffix}" for i in range(6) for j in range(6)]
    return columns


def _derived_columns() -> list[tuple[str, str, tuple[int, ...] | None]]:
    """(column, derived key, index into the value or None for a scalar)."""
    out: list[tuple[str, str, tuple[int, ...] | None]] = []
    for key, unit in DERIVED_UNITS.items():
        suffix = _SUFFIX[unit]
        if key.endswith("_eigenvalues"):
            out += [(f"{key}_{n + 1}{suffix}", key, (n,)) for n in range(3)]
        elif key == "piezo_strain_d":
            out += [(f"d{i + 1}{j + 1}{suffix}", key, (i, j)) for i in range(3) for j in range(6)]
        else:
            out.append((f"{key}{suffix}", key, None))
    return out


def csv_columns() -> list[str]:
    """Return the fixed CSV header: metadata, Voigt-flattened tensors, derived values; units in names."""
    return [*_META, *_tensor_columns(), *(column for column, _, _ in _derived_columns())]


def flatten_row(row: dict[str, Any]) -> dict[str, Any]:
    """Flatten a JSON row (see ``TensorPrediction.to_dict``) into CSV columns; missing values stay empty."""
    flat = {key: row.get(key) for key in _META[:6]}
    symmetry = row.get("symmetry") or {}
    flat.update(space_group=symmetry.get("space_group_symbol"), space_group_number=symmetry.get(
        "space_group_number"), point_group=symmetry.get("point_group"), symprec=symmetry.get("symprec"))
    if row.get("ok"):
        values: list[float] = []
        for name in ("dielectric_electronic", "dielectric_ionic", "dielectric_total"):
            values += [row[name][i][j] for i, j in VOIGT_PAIRS]
        values += [v for line in row["piezoelectric"] for v in line]
        values += [v for line in row["elastic"] for v in line]
        flat.update(zip(_tensor_columns(), values, strict=True))
        derived = row["derived"]
        for column, key, index in _derived_columns():
            value = derived.get(key)
            for k in index or ():
                value = None if value is None else value[k]
            flat[column] = value
    return flat


def _trim_partial_line(path: Path) -> None:
    """Drop a last line without newline (left by a killed run) so that appended rows stay well-formed."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _existing_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            if reader.fieldnames and list(reader.fieldnames) != csv_columns():
                raise SystemExit(f"gmt-ase: {path} has different columns; write to a new file")
            yield from reader
            return
        for line in handle:
            with contextlib.suppress(json.JSONDecodeError):
                yield json.loads(line)


def read_done(path: Path, model_sha256: str | None) -> set[str]:
    """Return the sources already in the output (none if it is new), after trimming a partial last line.

    Raises
    ------
    SystemExit
        If the existing rows were written by a different model.

    """
    if not path.exists():
        return set()
    _trim_partial_line(path)
    done: set[str] = set()
    for row in _existing_rows(path):
        sha = row.get("model_sha256") or None
        if sha != model_sha256:
            raise SystemExit(f"gmt-ase: {path} holds results of another model (sha256 {sha}); use a new file")
        done.add(row["source"])
    return done


@contextlib.contextmanager
def open_writer(path: Path | None) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Yield ``write(row)`` appending JSON lines (or CSV rows for ``*.csv``) to ``path``, or stdout."""
    is_csv = path is not None and path.suffix.lower() == ".csv"
    new_file = path is None or not path.exists() or path.stat().st_size == 0
    with contextlib.ExitStack() as stack:
        handle = sys.stdout if path is None else stack.enter_context(path.open("a", newline=""))
        if is_csv:
            writer = csv.DictWriter(handle, fieldnames=csv_columns())
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
