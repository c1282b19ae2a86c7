"""Stored-form (true, pred) pairs of an evaluation, per target and for the (K_VRH, G_VRH) moduli.

Internal to :mod:`gmt_ase.evaluation.evaluate`: :func:`_collect` turns predicted samples into :class:`_Pairs`, adding
the ``dielectric_total`` sums and the ``piezoelectric_zeros`` zero targets of centrosymmetric materials.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gmt_ase.core.tensors import MODEL_TARGETS
from gmt_ase.evaluation.metrics import moduli_vrh, stored_array

if TYPE_CHECKING:
    from gmt_ase.training.data import TensorRecord

#: Tensors the model predicts, as keys of the prediction dicts.
_MODEL_OUTPUTS = MODEL_TARGETS


@dataclass(frozen=True)
class _Sample:
    """One predicted record: ids, symmetry and the float64 Cartesian predictions."""

    record: TensorRecord
    system: str
    centrosymmetric: bool
    operations: np.ndarray
    pred: dict[str, np.ndarray]


@dataclass
class _Pairs:
    """Stored-form (true, pred) arrays of one target with their labels."""

    true: list[np.ndarray]
    pred: list[np.ndarray]
    material_id: list[str]
    source: list[str]
    crystal_system: list[str]

    def add(self, sample: _Sample, true: np.ndarray, pred: np.ndarray) -> None:
        self.true.append(np.asarray(true, dtype=float))
        self.pred.append(np.asarray(pred, dtype=float))
        self.material_id.append(sample.record.material_id)
        self.source.append(sample.record.source)
        self.crystal_system.append(sample.system)

    def subset(self, keep: Sequence[bool]) -> _Pairs:
        def pick(values: list) -> list:
            return [v for v, k in zip(values, keep, strict=True) if k]

        return _Pairs(*(pick(values) for values in self._fields()))

    def joined(self, other: _Pairs) -> _Pairs:
        return _Pairs(*(a + b for a, b in zip(self._fields(), other._fields(), strict=True)))

    def _fields(self) -> tuple[list, ...]:
        return self.true, self.pred, self.material_id, self.source, self.crystal_system

    def as_arrays(self) -> dict[str, Any]:
        return {
            "true": np.array(self.true),
            "pred": np.array(self.pred),
            "material_id": self.material_id,
            "source": self.source,
            "crystal_system": self.crystal_system,
        }


def _new_pairs() -> _Pairs:
    return _Pairs([], [], [], [], [])


def _collect(samples: Sequence[_Sample]) -> tuple[dict[str, _Pairs], dict[str, _Pairs]]:
    """Per-target (true, pred) pairs of the tensors and of the (K, G) moduli."""
    pairs: dict[str, _Pairs] = defaultdict(_new_pairs)
    for sample in samples:
        targets, pred = sample.record.targets, sample.pred
        for name in _MODEL_OUTPUTS:
            if name in targets:
                pairs[name].add(sample, stored_array(targets[name]), stored_array(pred[name]))
        if "dielectric_electronic" in targets and "dielectric_ionic" in targets:
            true_total = targets["dielectric_electronic"] + targets["dielectric_ionic"]
            pred_total = pred["dielectric_electronic"] + pred["dielectric_ionic"]
            pairs["dielectric_total"].add(sample, true_total, pred_total)
    _add_piezo_zeros(samples, pairs)
    return dict(pairs), _collect_moduli(samples)


def _add_piezo_zeros(samples: Sequence[_Sample], pairs: dict[str, _Pairs]) -> None:
    """Add one zero-target sample per centrosymmetric material that has no piezoelectric record."""
    piezo_ids = {s.record.material_id for s in samples if "piezoelectric" in s.record.targets}
    zeros = _new_pairs()
    for sample in samples:
        material_id = sample.record.material_id
        if sample.centrosymmetric and material_id not in piezo_ids:
            zeros.add(sample, np.zeros((3, 6)), stored_array(sample.pred["piezoelectric"]))
            piezo_ids.add(material_id)
    pairs["piezoelectric_zeros"] = zeros


def _collect_moduli(samples: Sequence[_Sample]) -> dict[str, _Pairs]:
    """(K_VRH, G_VRH) pairs from full elastic targets (``elastic``) and from the binaries' scalars."""
    moduli: dict[str, _Pairs] = defaultdict(_new_pairs)
    for sample in samples:
        targets = sample.record.targets
        if "elastic" in targets:
            moduli["elastic"].add(sample, np.array(moduli_vrh(targets["elastic"])), _pred_moduli(sample))
        elif "k_vrh" in targets and "g_vrh" in targets:
            true_kg = np.array([float(targets["k_vrh"]), float(targets["g_vrh"])])
            moduli["elastic_binary"].add(sample, true_kg, _pred_moduli(sample))
    return dict(moduli)


def _pred_moduli(sample: _Sample) -> np.ndarray:
    return np.array(moduli_vrh(sample.pred["elastic"]))
