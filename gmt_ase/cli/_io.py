"""Inputs and rows of ``gmt-ase predict``: input discovery and streaming, CSV columns.

Input: files, folders (their structure files, sorted; subfolders with ``recursive``) and glob patterns;
every frame of every file is one structure, shown as ``"<path>@<frame>"``. The output file itself is
handled by :mod:`gmt_ase.cli._output`.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmt_ase.core.derived import DERIVED_UNITS
from gmt_ase.core.tensors import VOIGT_PAIRS
from gmt_ase.results import SCALAR_STD_KEYS, TENSOR_UNITS

__all__ = [
    "LATER_COLUMNS",
    "InputItem",
    "csv_columns",
    "csv_layouts",
    "flatten_row",
    "resolve_paths",
    "stream_structures",
]

_FORMATS = {
    ".cif": "cif",
    ".vasp": "vasp",
    ".poscar": "vasp",
    ".extxyz": "extxyz",
    ".xyz": "extxyz",
    ".traj": "traj",
    ".json": "json",
}
_VASP_NAMES = ("POSCAR", "CONTCAR")
_AXES = "xyz"
_VOIGT_LABELS = tuple(_AXES[i] + _AXES[j] for i, j in VOIGT_PAIRS)  # xx yy zz yz xz xy
_SUFFIX = {"GPa": "_GPa", "C/m^2": "_C_per_m2", "pC/N": "_pC_per_N", "1": "", "bool": ""}
#: Columns copied from the JSON row as they are; ``permanent`` marks a failure that a rerun skips while the
#: input file keeps its ``input_stamp`` (size and modification time).
_ROW_META = (
    "source",
    "index",
    "ok",
    "error_type",
    "error",
    "model_sha256",
    "path",
    "frame",
    "symprec",
    "permanent",
    "input_stamp",
)
_META = (*_ROW_META, "space_group", "space_group_number", "point_group")
#: Applicability warnings (joined by " | "), why there is no uncertainty and the piezo prototype's material
#: id; then one-sigma columns.
_QUALITY = ("n_warnings", "warnings", "uncertainty_note", "piezo_prototype")
_FORMAT_NAMES = {
    "cif": "CIF",
    "vasp": "POSCAR",
    "extxyz": "extxyz",
    "traj": "ASE trajectory",
    "json": "ASE JSON database",
    None: "structure",
}
#: What a folder scan reads, for the note about skipped files.
STRUCTURE_FILES = "*.cif, *.vasp, *.poscar, POSCAR*, CONTCAR*, *.extxyz, *.xyz, *.traj, *.json"


def _ase_format(path: Path) -> str | None:
    if path.name.upper().startswith(_VASP_NAMES):
        return "vasp"
    return _FORMATS.get(path.suffix.lower())


def _folder_files(folder: Path, recursive: bool, notes: list[str]) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    files = [p for p in folder.glob(pattern) if p.is_file()]
    found = sorted(p for p in files if _ase_format(p) is not None)
    other = [p for p in files if _ase_format(p) is None and not p.name.startswith(".")]
    skipped = Counter(p.suffix.lower() or p.name for p in other)
    if skipped:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(skipped.items()))
        notes.append(
            f"{folder}: skipped {sum(skipped.values())} file(s) that are not structure files ({kinds}); "
            f"read: {STRUCTURE_FILES}"
        )
    subfolders = [p for p in folder.iterdir() if p.is_dir()] if not recursive else []
    if subfolders:
        notes.append(f"{folder}: {len(subfolders)} subfolder(s) not searched (use --recursive)")
    return found


def resolve_paths(patterns: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs, keeping order and dropping repeats; also return notes for the user.

    Parameters
    ----------
    patterns
        Files, folders (their structure files, sorted) or glob patterns (``**`` recurses).
    recursive
        Also search the subfolders of folders; without it, a note says how many were not searched.

    Raises
    ------
    FileNotFoundError
        If a pattern matches nothing.

    """
    paths: list[Path] = []
    notes: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = _folder_files(path, recursive, notes)
        elif glob.has_magic(pattern):
            found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        else:
            found = [path] if path.is_file() else []
        if not found:
            mine = [note.split(": ", 1)[1] for note in notes if note.startswith(f"{path}:")]
            extra = f" ({'; '.join(mine)})" if mine else ""
            raise FileNotFoundError(f"no structure files found for {pattern!r}{extra}")
        paths.extend(p for p in found if p not in paths)
    return paths, notes


@dataclass(frozen=True)
class InputItem:
    """One structure of the input stream: where it comes from, and the ``Atoms`` or why it cannot be read."""

    path: Path
    frame: int
    structure: Any

    @property
    def source(self) -> str:
        """``"<path as given>@<frame>"``, for people."""
        return f"{self.path}@{self.frame}"

    @property
    def location(self) -> str:
        """``"<resolved absolute path>@<frame>"``: the resume key, independent of the working directory."""
        return f"{self.path.resolve()}@{self.frame}"


class StructureReadError(ValueError):
    """A structure file that cannot be read; the message names the file and what is wrong."""


def _read_error(path: Path, fmt: str | None, error: Exception) -> StructureReadError:
    """Explain what ASE's readers raise (their own messages can be a bare ``KeyError: 'Xx'``)."""
    from ase.data import chemical_symbols

    detail = str(error).strip() or "the file does not parse"
    what = _FORMAT_NAMES.get(fmt, fmt)
    word = error.args[0] if isinstance(error, KeyError) and error.args else None
    if isinstance(word, str) and word not in chemical_symbols:
        reason = f"unknown element symbol {word!r}"
    elif isinstance(error, ValueError) and "broadcast" in detail:
        reason = f"truncated or malformed (too few lines or numbers): {detail}"
    elif fmt == "cif" and isinstance(error, AttributeError | IndexError | TypeError | AssertionError | KeyError):
        reason = (
            "not a valid CIF (corrupt or truncated?): an atom-site, cell or symmetry entry does not parse, "
            "e.g. an unknown element symbol or a '?' placeholder; "
            f"ASE's reader raised {type(error).__name__}: {detail}"
        )
    else:
        reason = f"{type(error).__name__}: {detail}"
    return StructureReadError(f"cannot read {path} as a {what} file: {reason}")


def stream_structures(paths: Sequence[Path]) -> Iterator[InputItem]:
    """Yield an :class:`InputItem` for every frame of every file (a :class:`StructureReadError` for a bad one).

    Files are read lazily with ``ase.io.iread``, so multi-frame files never sit in memory whole.
    """
    import ase.io

    for path in paths:
        frame = 0
        fmt = _ase_format(path)
        try:
            for atoms in ase.io.iread(path, index=":", format=fmt):
                yield InputItem(path, frame, atoms)
                frame += 1
            if frame == 0:
                raise ValueError("the file contains no structures")
        except Exception as error:  # noqa: BLE001 - a bad file becomes one error row, the run goes on
            yield InputItem(path, frame, _read_error(path, fmt, error))


def _tensor_columns(std: str = "") -> list[str]:
    """Tensor columns; ``std="_std"`` names their one-sigma columns (``elastic_std_C11_GPa``, ...)."""
    columns = []
    for name in ("dielectric_electronic", "dielectric_ionic", "dielectric_total"):
        columns += [f"{name}{std}_{label}" for label in _VOIGT_LABELS]
    suffix = _SUFFIX[TENSOR_UNITS["piezoelectric"]]
    columns += [f"piezoelectric{std}_e{i + 1}{j + 1}{suffix}" for i in range(3) for j in range(6)]
    suffix = _SUFFIX[TENSOR_UNITS["elastic"]]
    columns += [f"elastic{std}_C{i + 1}{j + 1}{suffix}" for i in range(6) for j in range(6)]
    return columns


def _scalar_std_columns() -> list[tuple[str, str]]:
    """(column, uncertainty key) of the derived scalars' one-sigma values."""
    return [(f"{key}_std{_SUFFIX[DERIVED_UNITS[key]]}", f"{key}_std") for key in SCALAR_STD_KEYS]


def _tensor_values(row: dict[str, Any], std: str = "") -> list[float | None]:
    values: list[float | None] = []
    for name in ("dielectric_electronic", "dielectric_ionic", "dielectric_total"):
        values += [row[name + std][i][j] for i, j in VOIGT_PAIRS]
    values += [v for line in row["piezoelectric" + std] for v in line]
    values += [v for line in row["elastic" + std] for v in line]
    return values


def _flatten_quality(row: dict[str, Any], flat: dict[str, Any]) -> None:
    """Warnings, the no-uncertainty note and the one-sigma columns (empty when the model has no spread)."""
    warnings = row.get("warnings") or []
    flat.update(
        n_warnings=len(warnings),
        warnings=" | ".join(" ".join(w.splitlines()) for w in warnings),
        uncertainty_note=row.get("uncertainty_note"),
        piezo_prototype=row.get("piezo_prototype"),
    )
    uncertainty = row.get("uncertainty") or {}
    if all(uncertainty.get(f"{name}_std") is not None for name in TENSOR_UNITS):
        std_row = {f"{name}_std": uncertainty[f"{name}_std"] for name in TENSOR_UNITS}
        flat.update(zip(_tensor_columns("_std"), _tensor_values(std_row, "_std"), strict=True))
    for column, key in _scalar_std_columns():
        flat[column] = uncertainty.get(key)


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


#: Columns added since the first CSV layout: a CSV output without them (an older gmt-ase) is still resumed and
#: appended to in its own layout (its rows carry no permanent-failure marks, so its failures are retried).
LATER_COLUMNS = ("permanent", "input_stamp")


def csv_layouts() -> list[list[str]]:
    """Return the CSV headers a resumed output may have: this version's, then the older one."""
    return [csv_columns(), [column for column in csv_columns() if column not in LATER_COLUMNS]]


def csv_columns() -> list[str]:
    """Return the fixed CSV header: metadata, warnings, tensors, derived values, one-sigma values; units in names."""
    return [
        *_META,
        *_QUALITY,
        *_tensor_columns(),
        *(column for column, _, _ in _derived_columns()),
        *_tensor_columns("_std"),
        *(column for column, _ in _scalar_std_columns()),
    ]


def flatten_row(row: dict[str, Any]) -> dict[str, Any]:
    """Flatten a JSON row (see ``TensorPrediction.to_dict``) into CSV columns; missing values stay empty."""
    flat = {key: row.get(key) for key in _ROW_META}
    if isinstance(flat["error"], str):  # one line per CSV record: resume and compaction rely on it
        flat["error"] = " ".join(flat["error"].splitlines())
    symmetry = row.get("symmetry") or {}
    flat.update(
        space_group=symmetry.get("space_group_symbol"),
        space_group_number=symmetry.get("space_group_number"),
        point_group=symmetry.get("point_group"),
    )
    if row.get("ok"):
        _flatten_quality(row, flat)
        flat.update(zip(_tensor_columns(), _tensor_values(row), strict=True))
        derived = row["derived"]
        for column, key, index in _derived_columns():
            value = derived.get(key)
            for k in index or ():
                value = None if value is None else value[k]
            flat[column] = value
    return flat
