"""The Materials Project tensor files: where each source lives and how its raw entries become targets.

Each source of :data:`SOURCE_FILES` is a gzipped JSON list of entries (or a dict with a ``records`` list).
:func:`raw_targets` converts one entry to float64 Cartesian full tensors (symmetrised where the files are
not), :func:`excluded_ids` lists the materials a source leaves to another file (duplicates), and
:func:`raw_frame_trusted` reads the source's frame flag. :mod:`gmt_ase.training.data` builds the records from these.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gmt_ase.core.tensors import voigt_to_full

__all__ = [
    "ALL_SOURCES",
    "SOURCE_FILES",
    "MATTEN_FILE",
    "RawCache",
    "read_raw",
    "raw_id",
    "raw_targets",
    "raw_frame_trusted",
    "excluded_ids",
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
_UNTRUSTED_FRAME_MARKERS = ("repaired", "optimized")
#: Raw entries of the files read so far, keyed by source.
RawCache = dict[str, list[dict[str, Any]]]


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


def raw_targets(source: str, raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Float64 Cartesian full tensors (and the binaries' ``k_vrh``/``g_vrh`` scalars) of one raw entry."""
    return _CONVERTERS[source](raw)


def raw_frame_trusted(raw: dict[str, Any]) -> bool:
    """Return False when the source repaired the entry's frame (``frame_check.frame`` says so)."""
    frame = str(raw.get("frame_check", {}).get("frame", ""))
    return not any(marker in frame for marker in _UNTRUSTED_FRAME_MARKERS)


def read_raw(data_dir: Path, source: str, cache: RawCache) -> list[dict[str, Any]]:
    """Raw entries of one source's file, read once per ``cache``."""
    if source not in cache:
        with gzip.open(data_dir / SOURCE_FILES[source], "rt", encoding="utf-8") as handle:
            content = json.load(handle)
        cache[source] = content["records"] if isinstance(content, dict) else content
    return cache[source]


def raw_id(raw: dict[str, Any]) -> str:
    """Material id of a raw entry (``material_id``, else ``mp_id``)."""
    return str(raw.get("material_id", raw.get("mp_id")))


_DEFERS_TO: dict[str, tuple[tuple[str, ...], str]] = {
    "elastic_strainnet": (("elastic",), "duplicate of matminer elastic"),
    "elastic_binary": (("elastic", "elastic_strainnet"), "has full tensor"),
}


def excluded_ids(data_dir: Path, source: str, cache: RawCache) -> tuple[set[str], str]:
    """Material ids that this source leaves to other files (whole files, before filtering), and why."""
    others, reason = _DEFERS_TO.get(source, ((), ""))
    return {raw_id(raw) for other in others for raw in read_raw(data_dir, other, cache)}, reason
