"""Training samples of a run: records loaded, filtered, split and turned into graphs once, then cached.

Graphs are built by :func:`gmt_ase.training.samples.make_samples`, i.e. through inference's validated path
(:func:`gmt_ase.graph.crystal.prepare_crystal`); a record inference would refuse is left out and logged.
The cache file in the run folder holds plain data only (:mod:`gmt_ase.training.samples`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gmt_ase.nn.model import ModelConfig
from gmt_ase.training.config import TrainConfig
from gmt_ase.training.data import SOURCE_FILES, dataset_hash, load_records, read_jarvis_pickle, split_by_material
from gmt_ase.training.samples import Sample, load_samples, make_samples, save_samples

__all__ = ["cached_samples", "log_offsets", "prepare_samples"]


def log_offsets(samples: list[Sample]) -> dict[str, float]:
    """Mean isotropic part of each log target: the network then starts from the data's centre."""
    offsets = {}
    for name in ("dielectric_electronic", "dielectric_ionic", "elastic"):
        logs = [np.trace(s.targets[f"log_{name}"]) / len(s.targets[f"log_{name}"]) for s in samples
                if f"log_{name}" in s.targets]
        offsets[name] = float(np.mean(logs)) if logs else 0.0
    norms = [np.linalg.norm(s.targets["piezoelectric"]) for s in samples if "piezoelectric" in s.targets]
    offsets["piezoelectric"] = float(np.mean(np.log(np.maximum(norms, 1e-3)))) if norms else -1.0
    return offsets


def prepare_samples(cfg: TrainConfig, model_cfg: ModelConfig) -> tuple[dict[str, list[Sample]], str, list[int]]:
    """Load, filter and split the records; build graphs. Returns splits, data hash and species."""
    records = load_records(cfg.data_dir, sources=tuple(cfg.sources))
    for pickle_path in cfg.jarvis_pickles:
        records += read_jarvis_pickle(pickle_path)
    records = [r for r in records if len(r.structure) <= cfg.max_atoms]
    # Piezo tensors whose frame was repaired may carry a flipped sign (data/README.md): as training
    # targets they contradict the trusted ones, so only trusted piezo frames are learned from.
    records = [r for r in records if r.frame_trusted or r.source != "piezoelectric"]
    splits = split_by_material(records, seed=cfg.split_seed)
    samples = {
        name: make_samples(recs, model_cfg.cutoff, model_cfg.elastic_scale, desc=f"graphs {name}")
        for name, recs in splits.items()
    }
    species = sorted({int(z) for s in samples["train"] for z in s.graph.numbers})
    return samples, dataset_hash(records), species


def cached_samples(
    cfg: TrainConfig, model_cfg: ModelConfig, cache: Path
) -> tuple[dict[str, list[Sample]], str, list[int]]:
    """:func:`prepare_samples`, cached in the run folder so that a resumed run starts in seconds.

    The cache holds plain tensors only (:func:`gmt_ase.training.samples.load_samples` never unpickles objects)
    and is keyed by the settings that shape it (and the version of the structure checks).
    """
    sources = [Path(cfg.data_dir) / name for name in SOURCE_FILES.values()] + [Path(p) for p in cfg.jarvis_pickles]
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sources if p.exists()]
    key = json.dumps(["trusted-piezo-v1", "validated-v1", sorted(cfg.sources), stats, cfg.max_atoms, cfg.split_seed,
                      model_cfg.cutoff, model_cfg.elastic_scale])
    cached = load_samples(cache, key)
    if cached is not None:
        splits, extra = cached
        return splits, extra["data_hash"], extra["species"]
    splits, data_hash, species = prepare_samples(cfg, model_cfg)
    save_samples(cache, key, splits, {"data_hash": data_hash, "species": species})
    return splits, data_hash, species


