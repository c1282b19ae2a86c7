"""Training samples: records -> (graph, targets) pairs and their collation into masked batches.

Positive-definite targets also get their "log" form, the quantity the network predicts before the
matrix exponential (see :mod:`gmt_ase.nn.model`):

* ``log_dielectric_electronic = logm(eps_inf - 1)``,
* ``log_dielectric_ionic = logm(eps_ion)``,
* ``log_elastic = logm(C_Mandel / c0)``,

with eigenvalues floored (:data:`LOG_FLOORS`) because DFT ionic parts can be ~0 or slightly negative.

:func:`save_samples` and :func:`load_samples` cache built samples as plain tensors, strings and numbers
(``torch.load(weights_only=True)``): a cache file can never run code, whoever wrote it.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmt_ase.core.symmetry import DEFAULT_SYMPREC
from gmt_ase.core.tensors import MODEL_TARGETS, TARGETS, mandel_from_full
from gmt_ase.graph.crystal import prepare_crystal
from gmt_ase.graph.crystal_graph import CrystalGraph, collate, crystal_graph
from gmt_ase.graph.validation import InvalidStructureError
from gmt_ase.inference.io import save_atomically

__all__ = [
    "LOG_FLOORS",
    "Sample",
    "TARGET_KEYS",
    "collate_samples",
    "load_samples",
    "make_sample",
    "make_samples",
    "save_samples",
    "symmetric_logm",
]

_CACHE_FORMAT = "gmt_ase.samples/1"
_log = logging.getLogger(__name__)

#: Eigenvalue floors before taking matrix logarithms (dimensionless, dimensionless, GPa / c0).
LOG_FLOORS = {"dielectric_electronic": 0.05, "dielectric_ionic": 0.02, "elastic": 0.02}
#: Every per-sample target key a batch may carry.
TARGET_KEYS = (
    *MODEL_TARGETS,
    "log_dielectric_electronic",
    "log_dielectric_ionic",
    "log_elastic",
    "k_vrh",
    "g_vrh",
)
_SHAPES = {
    **{name: TARGETS[name].shape for name in MODEL_TARGETS},
    "log_dielectric_electronic": (3, 3),
    "log_dielectric_ionic": (3, 3),
    "log_elastic": (6, 6),
    "k_vrh": (),
    "g_vrh": (),
}


@dataclass(frozen=True)
class Sample:
    """A crystal graph with the targets it has (others are masked out in the loss)."""

    material_id: str
    source: str
    graph: CrystalGraph
    targets: dict[str, np.ndarray]


def symmetric_logm(matrix: np.ndarray, floor: float) -> np.ndarray:
    """Matrix logarithm of a symmetric matrix with eigenvalues floored at ``floor``."""
    sym = 0.5 * (matrix + matrix.T)
    values, vectors = np.linalg.eigh(sym)
    return (vectors * np.log(np.maximum(values, floor))) @ vectors.T


def _with_logs(targets: dict[str, np.ndarray], elastic_scale: float) -> dict[str, np.ndarray]:
    out = {k: np.asarray(v, dtype=np.float64) for k, v in targets.items() if k in _SHAPES}
    if "dielectric_electronic" in out:
        chi = out["dielectric_electronic"] - np.eye(3)
        out["log_dielectric_electronic"] = symmetric_logm(chi, LOG_FLOORS["dielectric_electronic"])
    if "dielectric_ionic" in out:
        out["log_dielectric_ionic"] = symmetric_logm(out["dielectric_ionic"], LOG_FLOORS["dielectric_ionic"])
    if "elastic" in out:
        mandel = mandel_from_full(out["elastic"]) / elastic_scale
        out["log_elastic"] = symmetric_logm(mandel, LOG_FLOORS["elastic"])
    return out


def make_sample(record, cutoff: float, elastic_scale: float, symprec: float = DEFAULT_SYMPREC) -> Sample:
    """Build a :class:`Sample` from a :class:`gmt_ase.training.data.TensorRecord`.

    The graph comes from the path inference uses (:func:`gmt_ase.graph.crystal.prepare_crystal`, then
    :func:`gmt_ase.graph.crystal_graph.crystal_graph`): the same checks, symmetry and graph.

    Raises
    ------
    gmt_ase.graph.validation.InvalidStructureError
        For a structure inference would refuse (:func:`make_samples` leaves those out).
    """
    crystal, _ = prepare_crystal(record.structure, symprec=symprec, cutoff=cutoff)
    graph = crystal_graph(crystal, cutoff)
    return Sample(record.material_id, record.source, graph, _with_logs(record.targets, elastic_scale))


def make_samples(
    records: Sequence[Any], cutoff: float, elastic_scale: float, *, desc: str = "graphs"
) -> list[Sample]:
    """:func:`make_sample` for every record that passes validation (the others are logged and left out)."""
    from tqdm import tqdm

    samples = []
    for record in tqdm(records, desc=desc):
        try:
            samples.append(make_sample(record, cutoff, elastic_scale))
        except InvalidStructureError as error:
            _log.warning("leaving out %s (%s): %s", record.material_id, record.source, error)
    return samples


def collate_samples(samples: Sequence[Sample], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Collate graphs and stack targets; ``mask_<key>`` (B,) marks which crystals have each target."""
    batch = collate([s.graph for s in samples], dtype=dtype)
    for key in TARGET_KEYS:
        shape = _SHAPES[key]
        values = np.zeros((len(samples), *shape))
        mask = np.zeros(len(samples), dtype=bool)
        for b, sample in enumerate(samples):
            if key in sample.targets:
                values[b] = sample.targets[key]
                mask[b] = True
        batch[key] = torch.from_numpy(values).to(dtype)
        batch[f"mask_{key}"] = torch.from_numpy(mask)
    return batch


def _sample_to_plain(sample: Sample) -> dict[str, Any]:
    graph = sample.graph
    return {
        "material_id": sample.material_id,
        "source": sample.source,
        "graph": {name: torch.from_numpy(np.ascontiguousarray(getattr(graph, name)))
                  for name in ("numbers", "edge_index", "edge_vec", "operations")},
        "targets": {key: torch.from_numpy(np.asarray(value, dtype=np.float64))
                    for key, value in sample.targets.items()},
    }


def _sample_from_plain(data: dict[str, Any]) -> Sample:
    graph = CrystalGraph(**{name: tensor.numpy() for name, tensor in data["graph"].items()})
    targets = {key: tensor.numpy() for key, tensor in data["targets"].items()}
    return Sample(str(data["material_id"]), str(data["source"]), graph, targets)


def save_samples(path: str | Path, key: str, splits: dict[str, list[Sample]], extra: dict[str, Any]) -> None:
    """Write sample splits to ``path`` as plain data (tensors, strings, numbers, lists and dicts).

    Parameters
    ----------
    path
        File to write (atomically: a temporary file is renamed over it).
    key
        Identifies the settings the samples were built with; :func:`load_samples` returns them only for
        the same key.
    splits
        Split name -> samples.
    extra
        Plain JSON-like values stored alongside (e.g. the data hash and species).
    """
    path = Path(path)
    payload = {
        "format": _CACHE_FORMAT,
        "key": key,
        "extra": extra,
        "splits": {name: [_sample_to_plain(s) for s in samples] for name, samples in splits.items()},
    }
    save_atomically(payload, path)


def load_samples(path: str | Path, key: str | None) -> tuple[dict[str, list[Sample]], dict[str, Any]] | None:
    """Read a cache written by :func:`save_samples`; None if it is missing, stale, foreign or unreadable.

    ``key`` must equal the one it was saved with (None accepts any key). Returns ``(splits, extra)``.

    The file is read with ``torch.load(weights_only=True)``, which refuses every object but tensors and
    plain containers, so a planted pickle is ignored (and logged) instead of executed.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as error:
        _log.warning("ignoring unreadable sample cache %s: %s", path, error)
        return None
    if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
        return None
    if key is not None and payload.get("key") != key:
        return None
    splits = {name: [_sample_from_plain(s) for s in samples] for name, samples in payload["splits"].items()}
    return splits, payload["extra"]
