"""Training data: load the Materials Project tensor files, filter bad pairs and split by material.

Every record pairs a pymatgen ``Structure`` with Cartesian full tensors in the same frame (DESIGN.md
section 4). :func:`load_records` drops, and logs in a :class:`DropReport`:

* duplicates: StrainNet entries also in the matminer elastic file (those are not integer-rounded), and
  K/G binaries whose material also has a full elastic tensor in either elastic file;
* records with non-finite tensors or structures, or that cannot be read;
* frame mismatches: ``frame_check.sym_residual`` above :data:`FRAME_RESIDUAL_MAX`, then any tensor whose
  relative residual against the point group found at the loose tolerance :data:`LOOSE_SYMPREC` exceeds
  :data:`LOOSE_RESIDUAL_MAX` (see :func:`frame_consistency`).

Splits are by material id and joint across all sources (:func:`split_by_material`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from gmt_ase.jarvis import jarvis_structure, jarvis_targets, load_pickle
from gmt_ase.symmetry import analyze_symmetry, reynolds_projection
from gmt_ase.tensors import voigt_to_full

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

#: Data file of each source, relative to the data directory.
SOURCE_FILES: dict[str, str] = {
    "dielectric": "matminer_mp_tensors_2018/dielectric_petousis2017.json.gz",
    "piezoelectric": "matminer_mp_tensors_2018/piezoelectric_dejong2015.json.gz",
    "elastic": "matminer_mp_tensors_2018/elastic_dejong2015.json.gz",
    "elastic_strainnet": "strainnet_mp_elastic_val/mp_elastic_strainnet.json.gz",
    "elastic_binary": "matcalc_mp_binary_elasticity/mp-binary-pbe-elasticity-2025.1-pool.json.gz",
}
ALL_SOURCES: tuple[str, ...] = tuple(SOURCE_FILES)
MATTEN_FILE = "matten-mp-elastic-example/example_crystal_elasticity_tensor_n98.json"
FRAME_RESIDUAL_MAX = 5e-2
LOOSE_SYMPREC = 0.1
LOOSE_RESIDUAL_MAX = 0.05
_UNTRUSTED_FRAME_MARKERS = ("repaired", "optimized")
_RawCache = dict[str, list[dict[str, Any]]]


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
        float64 Cartesian full tensors keyed by target name (see :data:`gmt_ase.tensors.TARGETS`), plus the
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


@dataclass
class DropReport:
    """Every record dropped while loading, as ``(source, material_id, reason)``."""

    dropped: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, source: str, material_id: str, reason: str) -> None:
        """Log one dropped record."""
        self.dropped.append((source, material_id, reason))

    def summary(self) -> dict[tuple[str, str], int]:
        """Count the dropped records per ``(source, reason)``."""
        return dict(Counter((source, reason) for source, _, reason in self.dropped))


def _symmetric(matrix: Any) -> np.ndarray:
    array = np.asarray(matrix, dtype=float)
    return 0.5 * (array + array.T)


def _dielectric(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    electronic = np.asarray(raw["eps_electronic"], dtype=float)
    ionic = np.asarray(raw["eps_total"], dtype=float) - electronic
    return {"dielectric_electronic": _symmetric(electronic), "dielectric_ionic": _symmetric(ionic)}


def _piezoelectric(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    full = np.asarray(raw["piezo_full_C_per_m2"], dtype=float).reshape(3, 3, 3)
    return {"piezoelectric": 0.5 * (full + full.transpose(0, 2, 1))}


def _elastic(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    voigt = np.asarray(raw["elastic_voigt_GPa"], dtype=float).reshape(6, 6)
    return {"elastic": voigt_to_full(_symmetric(voigt))}  # 2 matminer tensors are unsymmetrized


def _binary(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        "k_vrh": np.asarray(raw["bulk_modulus_vrh"], dtype=float),
        "g_vrh": np.asarray(raw["shear_modulus_vrh"], dtype=float),
    }


_CONVERTERS: dict[str, Callable[[dict[str, Any]], dict[str, np.ndarray]]] = {
    "dielectric": _dielectric,
    "piezoelectric": _piezoelectric,
    "elastic": _elastic,
    "elastic_strainnet": _elastic,
    "elastic_binary": _binary,
}


def _read_raw(data_dir: Path, source: str, cache: _RawCache) -> list[dict[str, Any]]:
    if source not in cache:
        with gzip.open(data_dir / SOURCE_FILES[source], "rt", encoding="utf-8") as handle:
            content = json.load(handle)
        cache[source] = content["records"] if isinstance(content, dict) else content
    return cache[source]


def _raw_id(raw: dict[str, Any]) -> str:
    return str(raw.get("material_id", raw.get("mp_id")))


_DEFERS_TO: dict[str, tuple[tuple[str, ...], str]] = {
    "elastic_strainnet": (("elastic",), "duplicate of matminer elastic"),
    "elastic_binary": (("elastic", "elastic_strainnet"), "has full tensor"),
}


def _excluded_ids(data_dir: Path, source: str, cache: _RawCache) -> tuple[set[str], str]:
    """Material ids that this source leaves to other files (whole files, before filtering), and why."""
    others, reason = _DEFERS_TO.get(source, ((), ""))
    return {_raw_id(raw) for other in others for raw in _read_raw(data_dir, other, cache)}, reason


def _relative_residual(tensor: np.ndarray, operations: np.ndarray) -> float:
    norm = float(np.linalg.norm(tensor))
    if norm == 0.0:
        return 0.0
    return float(np.linalg.norm(reynolds_projection(tensor, operations) - tensor)) / norm


def frame_consistency(structure: Any, tensor: np.ndarray, symprec: float = LOOSE_SYMPREC) -> float:
    """Relative residual ``||P(T) - T||_F / ||T||_F`` of a tensor against a crystal's point group.

    Parameters
    ----------
    structure
        pymatgen ``Structure`` or ASE ``Atoms`` in the frame of ``tensor``.
    tensor
        Full Cartesian tensor of rank 1 to 4.
    symprec
        spglib tolerance in Angstrom; the loose default finds pseudo-symmetries that a tensor in the
        wrong frame violates even when the tight-tolerance group is trivial.

    Returns
    -------
    float
        0 for a symmetric (or zero) tensor; above :data:`LOOSE_RESIDUAL_MAX` flags a frame mismatch.

    """
    operations = analyze_symmetry(structure, symprec).operations
    return _relative_residual(np.asarray(tensor, dtype=float), operations)


def _loose_check_tensors(targets: dict[str, np.ndarray]) -> list[np.ndarray]:
    tensors = {name: value for name, value in targets.items() if value.ndim >= 2}
    if "dielectric_ionic" in tensors and "dielectric_electronic" in tensors:
        # The ionic part alone may break a loose-tolerance pseudo-symmetry for physical reasons (soft polar
        # modes of a slightly distorted cell); a frame error shows in the total.
        tensors["dielectric_ionic"] = tensors["dielectric_ionic"] + tensors["dielectric_electronic"]
    return list(tensors.values())


def _drop_reason(record: TensorRecord, raw: dict[str, Any]) -> str | None:
    """Why a record must be dropped, or None to keep it."""
    if not all(np.all(np.isfinite(value)) for value in record.targets.values()):
        return "non-finite tensor"
    structure = record.structure
    if not (np.all(np.isfinite(structure.lattice.matrix)) and np.all(np.isfinite(structure.frac_coords))):
        return "non-finite structure"
    residual = raw.get("frame_check", {}).get("sym_residual")
    if residual is not None and not residual <= FRAME_RESIDUAL_MAX:
        return "frame residual"
    tensors = _loose_check_tensors(record.targets)
    if not tensors:
        return None
    try:
        operations = analyze_symmetry(structure, LOOSE_SYMPREC).operations
    except (ValueError, TypeError, RuntimeError) as exc:
        return f"symmetry analysis failed: {exc}"
    if max(_relative_residual(tensor, operations) for tensor in tensors) > LOOSE_RESIDUAL_MAX:
        return "loose-symprec residual"
    return None


def _to_record(source: str, raw: dict[str, Any]) -> TensorRecord:
    frame = str(raw.get("frame_check", {}).get("frame", ""))
    return TensorRecord(
        material_id=_raw_id(raw),
        source=source,
        structure=Structure.from_dict(raw["structure"]),
        targets=_CONVERTERS[source](raw),
        frame_trusted=not any(marker in frame for marker in _UNTRUSTED_FRAME_MARKERS),
    )


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
    cache: _RawCache = {}
    records: list[TensorRecord] = []
    for source in sources:
        excluded, excluded_reason = _excluded_ids(data_dir, source, cache)
        for raw in _read_raw(data_dir, source, cache):
            material_id = _raw_id(raw)
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
    """Read a GMTNet JARVIS pickle (see :mod:`gmt_ase.jarvis`) with a restricted unpickler.

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
