"""Training data: the record type, loading the tensor files, and splitting and hashing the records.

Every record pairs a pymatgen ``Structure`` with Cartesian full tensors in the same frame (DESIGN.md
section 4). :func:`load_records` reads the files of :mod:`gmt_ase.training.sources` and drops, and logs in a
:class:`DropReport`:

* duplicates: StrainNet entries also in the matminer elastic file (those are not integer-rounded), and
  K/G binaries whose material also has a full elastic tensor in either elastic file;
* records that cannot be read, and those failing the filters of :mod:`gmt_ase.training.data_filters`: non-finite
  tensors or structures, ``frame_check.sym_residual`` above :data:`FRAME_RESIDUAL_MAX`, then any tensor
  whose relative residual against the point group found at the loose tolerance :data:`LOOSE_SYMPREC`
  exceeds :data:`LOOSE_RESIDUAL_MAX` (see :func:`frame_consistency`).

Splits are by material id and joint across all sources (:func:`split_by_material`). The names of
:mod:`gmt_ase.training.sources` and :mod:`gmt_ase.training.data_filters` listed in ``__all__`` are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from gmt_ase.training.data_filters import (
    FRAME_RESIDUAL_MAX,
    LOOSE_RESIDUAL_MAX,
    LOOSE_SYMPREC,
    DropReport,
    drop_reason,
    frame_consistency,
)
from gmt_ase.training.jarvis import jarvis_structure, jarvis_targets, load_pickle
from gmt_ase.training.sources import (
    ALL_SOURCES,
    MATTEN_FILE,
    SOURCE_FILES,
    RawCache,
    excluded_ids,
    raw_frame_trusted,
    raw_id,
    raw_targets,
    read_raw,
)

__all__ = [
    "ALL_SOURCES",
    "SOURCE_FILES",
    "FRAME_RESIDUAL_MAX",
    "LOOSE_SYMPREC",
    "LOOSE_RESIDUAL_MAX",
    "TensorRecord",
    "DropReport",
    "load_records",
    "load_matten_example",
    "read_jarvis_pickle",
    "frame_consistency",
    "split_by_material",
    "dataset_hash",
]


@dataclass(frozen=True)
class TensorRecord:
    """One crystal with its target tensors.

    Attributes
    ----------
    material_id
        Materials Project id (``"mp-441"``), JARVIS id, or a synthetic id.
    source
        ``"dielectric"``, ``"piezoelectric"``, ``"elastic"``, ``"elastic_strainnet"``, ``"elastic_binary"``,
        ``"jarvis"`` (or ``"elastic_matten"`` for the test fixture).
    structure
        Crystal structure, in the same Cartesian frame as the tensors.
    targets
        float64 Cartesian full tensors keyed by target name (see :data:`gmt_ase.core.tensors.TARGETS`), plus the
        scalars ``k_vrh`` and ``g_vrh`` (GPa, shape ()) for the binaries.
    frame_trusted
        False when the source repaired the structure frame (``frame_check.frame`` contains ``repaired`` or
        ``optimized``): the pair is symmetry-consistent but odd-rank tensors may have a flipped sign and
        axes may be relabelled.

    """

    material_id: str
    source: str
    structure: Structure
    targets: dict[str, np.ndarray]
    frame_trusted: bool = True


def _to_record(source: str, raw: dict[str, Any]) -> TensorRecord:
    frame_trusted = raw_frame_trusted(raw)
    return TensorRecord(
        material_id=raw_id(raw),
        source=source,
        structure=Structure.from_dict(raw["structure"]),
        targets=raw_targets(source, raw),
        frame_trusted=frame_trusted,
    )


def _drop_reason(record: TensorRecord, raw: dict[str, Any]) -> str | None:
    """Why a record must be dropped (:func:`gmt_ase.training.data_filters.drop_reason`), or None to keep it."""
    return drop_reason(record.targets, record.structure, raw.get("frame_check", {}).get("sym_residual"))


def load_records(
    data_dir: str | Path, sources: Sequence[str] = ALL_SOURCES, report: DropReport | None = None
) -> list[TensorRecord]:
    """Load, convert and filter the records of the requested sources.

    Parameters
    ----------
    data_dir
        Directory holding the files of :data:`SOURCE_FILES` (the repository's ``data/``).
    sources
        Subset of :data:`ALL_SOURCES`. Duplicate removal always looks at the full elastic files, so a
        source's records do not depend on which other sources are requested.
    report
        If given, every dropped record is logged in it.

    Returns
    -------
    list of TensorRecord
        Kept records, by source then in file order.

    """
    data_dir = Path(data_dir)
    unknown = set(sources) - set(ALL_SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}; expected a subset of {ALL_SOURCES}")
    report = DropReport() if report is None else report
    cache: RawCache = {}
    records: list[TensorRecord] = []
    for source in sources:
        excluded, excluded_reason = excluded_ids(data_dir, source, cache)
        for raw in read_raw(data_dir, source, cache):
            material_id = raw_id(raw)
            if material_id in excluded:
                report.add(source, material_id, excluded_reason)
                continue
            try:
                record = _to_record(source, raw)
            except (KeyError, TypeError, ValueError) as exc:
                report.add(source, material_id, f"unreadable record: {exc!r}")
                continue
            reason = _drop_reason(record, raw)
            if reason is None:
                records.append(record)
            else:
                report.add(source, material_id, reason)
    return records


def load_matten_example(data_dir: str | Path) -> list[TensorRecord]:
    """Load the 98 cubic MatTen example tensors (a test fixture, not training data).

    Records get ``material_id = f"matten-{row}"`` and source ``"elastic_matten"``; no filter is applied.
    """
    with open(Path(data_dir) / MATTEN_FILE, encoding="utf-8") as handle:
        columns = json.load(handle)
    tensors = columns["elastic_tensor_full"]
    return [
        TensorRecord(
            f"matten-{row}",
            "elastic_matten",
            Structure.from_dict(structure),
            {"elastic": np.asarray(tensors[row], dtype=float).reshape(3, 3, 3, 3)},
        )
        for row, structure in columns["structure"].items()
    ]


def read_jarvis_pickle(path: str | Path, report: DropReport | None = None) -> list[TensorRecord]:
    """Read a GMTNet JARVIS pickle (see :mod:`gmt_ase.training.jarvis`) with a restricted unpickler.

    Entries with no tensor, non-finite values or an unreadable structure, and entries failing the
    loose-symprec frame check of :func:`load_records`, are dropped (and logged in ``report`` if given).
    The material id is ``jid``, or ``f"jarvis-{index}"`` without one.

    Raises
    ------
    pickle.UnpicklingError
        If the file refers to anything but builtin containers and NumPy arrays.

    """
    entries = load_pickle(path)
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValueError(f"expected a list of dicts in {path}, got {type(entries).__name__}")
    report = DropReport() if report is None else report
    records = []
    for index, entry in enumerate(entries):
        material_id = str(entry.get("jid") or f"jarvis-{index}")
        try:
            structure = jarvis_structure(entry["atoms"])
            record = TensorRecord(material_id, "jarvis", structure, jarvis_targets(entry))
        except (KeyError, TypeError, ValueError) as exc:
            report.add("jarvis", material_id, f"unreadable record: {exc!r}")
            continue
        reason = "no tensors" if not record.targets else _drop_reason(record, {"frame_check": {}})
        if reason is None:
            records.append(record)
        else:
            report.add("jarvis", material_id, reason)
    return records


def _unit_interval(material_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{material_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_material(
    records: Sequence[TensorRecord], fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, list[TensorRecord]]:
    """Split records into ``"train"``, ``"val"`` and ``"test"`` by a hash of their material id.

    A material lands in the same split whatever file it comes from and whatever other records exist, so
    adding or removing records never moves another material.

    Parameters
    ----------
    records
        Records of any sources.
    fractions
        Expected train, val and test shares; non-negative, summing to 1.
    seed
        Changes the assignment.

    Returns
    -------
    dict of str to list of TensorRecord
        The three splits, each in input order.

    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    bounds = np.cumsum(fractions)[:2]
    names = ("train", "val", "test")
    splits: dict[str, list[TensorRecord]] = {name: [] for name in names}
    for record in records:
        position = _unit_interval(record.material_id, seed)
        splits[names[int(np.searchsorted(bounds, position, side="right"))]].append(record)
    return splits


def _record_digest(record: TensorRecord) -> bytes:
    sha = hashlib.sha256(f"{record.material_id}\0{record.source}\0{record.frame_trusted}".encode())
    structure = record.structure
    sha.update(np.asarray(structure.atomic_numbers, dtype="<i8").tobytes())
    for array in (structure.lattice.matrix, structure.frac_coords):
        sha.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    for name in sorted(record.targets):
        value = np.ascontiguousarray(record.targets[name], dtype="<f8")
        sha.update(f"\0{name}{value.shape}".encode())
        sha.update(value.tobytes())
    return sha.digest()


def dataset_hash(records: Sequence[TensorRecord]) -> str:
    """Order-independent sha256 (hex) of the records' ids, sources, frame flags, structures and tensors."""
    sha = hashlib.sha256()
    for digest in sorted(_record_digest(record) for record in records):
        sha.update(digest)
    return sha.hexdigest()
