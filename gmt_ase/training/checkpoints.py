"""What a run writes: ``last.pt`` to resume from (atomically), ``log.jsonl``, and exported checkpoints.

``last.pt`` holds the model, optimizer, moving average and loop state as tensors and plain containers
(read back with ``torch.load(weights_only=True)``); ``best.pt`` and ``swa.pt`` are gmt_ase checkpoints
(:func:`gmt_ase.inference.io.save_checkpoint`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import torch

from gmt_ase.inference.io import save_atomically, save_checkpoint
from gmt_ase.nn.model import GMTNet, ModelConfig
from gmt_ase.training.config import TrainConfig
from gmt_ase.training.loop import evaluate_loss
from gmt_ase.training.samples import Sample

__all__ = ["checkpoint_metadata", "finish_swa", "record_epoch", "resume"]


def resume(
    last: Path, model: GMTNet, optimizer: torch.optim.Optimizer, device: torch.device, ema: GMTNet | None
) -> dict:
    """Load ``last.pt`` into model, optimizer and moving average if it exists; return the loop state."""
    if not last.exists():
        return {"epoch": 0, "best_val": math.inf, "elapsed": 0.0}
    resume = torch.load(last, map_location=device, weights_only=True)
    model.load_state_dict(resume["model"])
    optimizer.load_state_dict(resume["optimizer"])
    if ema is not None:
        ema.load_state_dict(resume.get("ema", resume["model"]))
    return resume["state"]


def finish_swa(
    swa: dict, model_cfg: ModelConfig, val_samples: list[Sample], cfg: TrainConfig, device: torch.device,
    state: dict, provenance: tuple[list[int], str],
) -> None:
    """Export the averaged model as ``swa.pt``; it also becomes ``best.pt`` if its validation loss is lower."""
    out = Path(cfg.out_dir)
    averaged = GMTNet(model_cfg).to(device)
    averaged.load_state_dict(swa["state"])
    val = evaluate_loss(averaged, val_samples, cfg, device)
    val_total = float(sum(val.values())) if val else math.inf
    entry = {"epoch": f"swa of {swa['count']} epochs", "val": val, "val_total": val_total,
             "minutes": state["elapsed"] / 60}
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    metadata = checkpoint_metadata(cfg, *provenance, entry)
    save_checkpoint(out / "swa.pt", averaged, metadata=metadata)
    if val_total < state["best_val"]:
        save_checkpoint(out / "best.pt", averaged, metadata=metadata)


def record_epoch(
    out: Path, model: GMTNet, optimizer: torch.optim.Optimizer, state: dict, entry: dict, ema: GMTNet | None
) -> None:
    """Write ``last.pt`` (atomically) and then the log line: a crash never makes an epoch run twice."""
    snapshot = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}
    if ema is not None:
        snapshot["ema"] = ema.state_dict()
    save_atomically(snapshot, out / "last.pt")
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def checkpoint_metadata(cfg: TrainConfig, species: list[int], data_hash: str, entry: dict) -> dict:
    """Metadata of an exported checkpoint: run name, species, data hash, validation metrics, settings."""
    return {"name": Path(cfg.out_dir).name, "version": "1", "species": species, "data_hash": data_hash,
            "metrics": {"val_loss": entry["val"], "epoch": entry["epoch"]},
            "training": {"config": asdict(cfg), "minutes": entry["minutes"]}}
