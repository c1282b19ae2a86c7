"""Train a GMTNet model: ``gmt-ase train --data-dir data --out runs/default`` or ``python -m gmt_ase.training.train``.

Seeded and deterministic for a given device, a checkpoint every epoch (``last.pt``, resumed
automatically), the best validation model exported as a gmt_ase checkpoint (``best.pt``), one JSON line
per epoch in ``log.jsonl``. Runs on CPU, on CUDA when present, and on several GPUs under ``torchrun``
(DistributedDataParallel; each rank takes every world_size-th batch).

This module is the orchestration and the entry points only; the parts are :mod:`~gmt_ase.training.config`
(settings and flags), :mod:`~gmt_ase.training.prepare` (samples and their cache),
:mod:`~gmt_ase.training.loop` (epochs, schedule, DDP), :mod:`~gmt_ase.training.averaging` (EMA, SWA) and
:mod:`~gmt_ase.training.checkpoints` (resume, log, export).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from gmt_ase.inference.io import save_checkpoint
from gmt_ase.nn.model import GMTNet, ModelConfig
from gmt_ase.training.averaging import average_into, moving_average_copy
from gmt_ase.training.checkpoints import checkpoint_metadata, finish_swa, record_epoch, resume
from gmt_ase.training.config import TRAIN_FLAG_HELP, TrainConfig, add_arguments, config_from_args
from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, fill_element_table
from gmt_ase.training.loop import batch_order, device_for, distributed, evaluate_loss, lr_factor, train_epoch
from gmt_ase.training.prepare import cached_samples, log_offsets, prepare_samples

__all__ = ["TRAIN_FLAG_HELP", "TrainConfig", "add_parser", "main", "prepare_samples", "train"]


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; return the path of the exported best checkpoint."""
    if not Path(cfg.data_dir).is_dir():
        raise FileNotFoundError(f"training data folder not found: {Path(cfg.data_dir).resolve()} (use --data-dir)")
    rank, world = distributed()
    device = device_for(world, cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_cfg = ModelConfig.from_dict({**ModelConfig().to_dict(), **cfg.model})
    samples, data_hash, species = cached_samples(cfg, base_cfg, out / "samples.pt")
    model_cfg = ModelConfig.from_dict({
        **base_cfg.to_dict(), "log_offsets": log_offsets(samples["train"]),
        "element_features": len(ELEMENT_FEATURE_NAMES) if cfg.element_features else 0,
    })
    torch.manual_seed(cfg.seed)
    model = GMTNet(model_cfg)
    if cfg.element_features:
        fill_element_table(model)
    model = model.to(device)
    ema = moving_average_copy(model, device) if cfg.ema_decay > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = resume(out / "last.pt", model, optimizer, device, ema)
    validated = ema if ema is not None else model
    swa = state.get("swa")
    trainable = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    start = time.time() - state["elapsed"]
    for epoch in range(state["epoch"], cfg.epochs):
        if cfg.time_limit_minutes and (time.time() - start) / 60 > cfg.time_limit_minutes:
            break
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(epoch, cfg)
        batches = batch_order(len(samples["train"]), cfg.batch_size, cfg.seed, epoch)[rank::world]
        train_loss = train_epoch(trainable, optimizer, batches, samples["train"], cfg, device, rank == 0, epoch, ema)
        if epoch >= cfg.epochs - cfg.swa_epochs:
            swa = average_into(swa, validated)
        val = evaluate_loss(validated, samples["val"], cfg, device)
        # Select on the validation loss; with no validation crystals fall back to the training loss.
        val_total = float(sum(val.values())) if val else train_loss
        if not math.isfinite(val_total):
            val_total = math.inf
        improved = val_total < state["best_val"] or not (out / "best.pt").exists()
        state = {"epoch": epoch + 1, "best_val": min(state["best_val"], val_total), "elapsed": time.time() - start,
                 "swa": swa}
        if rank == 0:
            entry = {"epoch": epoch, "train_loss": train_loss, "val": val, "val_total": val_total,
                     "selected_on": "val" if val else "train", "lr": optimizer.param_groups[0]["lr"],
                     "minutes": state["elapsed"] / 60}
            record_epoch(out, model, optimizer, state, entry, ema)
            if improved:
                metadata = checkpoint_metadata(cfg, species, data_hash, entry)
                save_checkpoint(out / "best.pt", validated, metadata=metadata)
    if swa is not None and rank == 0 and not (out / "swa.pt").exists():
        finish_swa(swa, model_cfg, samples["val"], cfg, device, state, (species, data_hash))
    return out / "best.pt"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``gmt-ase train``: every :class:`TrainConfig` field is a flag; ``--config`` reads JSON."""
    parser = subparsers.add_parser("train", help="train a GMTNet model on tensor data")
    add_arguments(parser)
    parser.set_defaults(func=_run_from_args)
    return parser


def _run_from_args(args: argparse.Namespace) -> int:
    best = train(config_from_args(args))
    print(f"best checkpoint: {best}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m gmt_ase.training.train``."""
    parser = argparse.ArgumentParser(prog="gmt_ase.training.train")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["train", *(argv if argv is not None else __import__("sys").argv[1:])])
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
