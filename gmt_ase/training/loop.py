"""The optimisation loop: batch order, learning-rate schedule, one epoch, validation loss, DDP set-up.

Each rank of a ``torchrun`` job takes every world_size-th batch (:func:`distributed` starts the process
group from the environment); seeded batch orders make a run deterministic for a given device.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from tqdm import tqdm

from gmt_ase.nn.model import GMTNet
from gmt_ase.training.averaging import update_ema
from gmt_ase.training.config import TrainConfig
from gmt_ase.training.losses import multitask_loss
from gmt_ase.training.samples import Sample, collate_samples

__all__ = ["batch_order", "device_for", "distributed", "evaluate_loss", "lr_factor", "train_epoch"]


def batch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Index arrays of the batches of one epoch: a permutation seeded by (seed, epoch), cut into batches."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def lr_factor(epoch: float, cfg: TrainConfig) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup_epochs``, then cosine decay to 2%."""
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    progress = (epoch - cfg.warmup_epochs) / max(1, cfg.epochs - cfg.warmup_epochs)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def evaluate_loss(model: GMTNet, samples: list[Sample], cfg: TrainConfig, device: torch.device) -> dict:
    """Mean of each loss term over ``samples`` (evaluation mode, no gradients)."""
    model.eval()
    totals: dict[str, list[float]] = {}
    with torch.no_grad():
        for idx in batch_order(len(samples), 64, 0, 0):
            batch = {k: v.to(device) for k, v in collate_samples([samples[i] for i in idx]).items()}
            _, terms = multitask_loss(model(batch), batch, model.config.elastic_scale)
            for name, value in terms.items():
                totals.setdefault(name, []).append(value)
    return {name: float(np.mean(values)) for name, values in totals.items()}


def distributed() -> tuple[int, int]:
    """``(rank, world_size)``; starts the process group when ``torchrun`` set ``WORLD_SIZE`` > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def device_for(world: int, requested: str | None) -> torch.device:
    """Pick the requested device (default CUDA if available), this rank's GPU under ``torchrun``."""
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def train_epoch(
    trainable: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[np.ndarray],
    samples: list[Sample], cfg: TrainConfig, device: torch.device, show: bool, epoch: int,
    ema: GMTNet | None = None,
) -> float:
    """One pass over ``batches`` (updating the moving average ``ema`` if given); return the mean loss."""
    trainable.train()
    model = getattr(trainable, "module", trainable)
    losses = []
    for idx in tqdm(batches, desc=f"epoch {epoch}", disable=not show, leave=False):
        batch = {k: v.to(device) for k, v in collate_samples([samples[i] for i in idx]).items()}
        loss, _ = multitask_loss(trainable(batch), batch, model.config.elastic_scale, cfg.loss_weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        if ema is not None:
            update_ema(ema, model, cfg.ema_decay)
        losses.append(float(loss.detach()))
    return float(np.mean(losses))
