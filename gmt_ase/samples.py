"""Training samples: records -> (graph, targets) pairs and their collation into masked batches.

Positive-definite targets also get their "log" form, the quantity the network predicts before the
matrix exponential (see :mod:`gmt_ase.model`):

* ``log_dielectric_electronic = logm(eps_inf - 1)``,
* ``log_dielectric_ionic = logm(eps_ion)``,
* ``log_elastic = logm(C_Mandel / c0)``,

with eigenvalues floored (:data:`LOG_FLOORS`) because DFT ionic parts can be ~0 or slightly negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gmt_ase.graph import CrystalGraph, build_graph, collate
from gmt_ase.symmetry import DEFAULT_SYMPREC, analyze_symmetry
from gmt_ase.tensors import MODEL_TARGETS, TARGETS, mandel_from_full

__all__ = ["LOG_FLOORS", "Sample", "make_sample", "collate_samples", "symmetric_logm", "TARGET_KEYS"]

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
    """Build a :class:`Sample` from a :class:`gmt_ase.data.TensorRecord`."""
    structure = record.structure
    info = analyze_symmetry(structure, symprec)
    graph = build_graph(
        np.array(structure.atomic_numbers), structure.cart_coords, structure.lattice.matrix, info.operations, cutoff
    )
    return Sample(record.material_id, record.source, graph, _with_logs(record.targets, elastic_scale))


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
