"""Train a GMTNet model: ``gmt-ase train --data-dir data --out runs/default`` or ``python -m gmt_ase.training.train``.

Seeded and deterministic for a given device, a checkpoint every epoch (``last.pt``, resumed
automatically), the best validation model exported as a gmt_ase checkpoint (``best.pt``), one JSON line
per epoch in ``log.jsonl``. Runs on CPU, on CUDA when present, and on several GPUs under ``torchrun``
(DistributedDataParallel; each rank takes every world_size-th batch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gmt_ase.inference.io import save_checkpoint
from gmt_ase.nn.model import GMTNet, ModelConfig
from gmt_ase.training.data import (
    ALL_SOURCES,
    SOURCE_FILES,
    dataset_hash,
    load_records,
    read_jarvis_pickle,
    split_by_material,
)
from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, fill_element_table
from gmt_ase.training.losses import multitask_loss
from gmt_ase.training.samples import Sample, collate_samples, load_samples, make_sample, save_samples

__all__ = ["TrainConfig", "add_parser", "main", "prepare_samples", "train"]


@dataclass
class TrainConfig:
    """Settings of one training run (all JSON-serialisable; saved next to the checkpoints).

    ``ema_decay`` > 0 keeps an exponential moving average of the weights (updated every step); the
    average is what is validated and exported. ``element_features`` adds the element descriptor table of
    :mod:`gmt_ase.training.element_features` to the species embedding.
    """

    data_dir: str = "data"
    out_dir: str = "runs/default"
    jarvis_pickles: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=lambda: list(ALL_SOURCES))
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-5
    swa_epochs: int = 0
    ema_decay: float = 0.995
    element_features: bool = True
    warmup_epochs: int = 2
    seed: int = 0
    split_seed: int = 0
    device: str | None = None
    time_limit_minutes: float | None = None
    max_atoms: int = 200
    model: dict = field(default_factory=dict)
    loss_weights: dict = field(default_factory=lambda: {"piezoelectric": 1.0})


#: Help text of every command-line flag generated from a :class:`TrainConfig` field.
TRAIN_FLAG_HELP: dict[str, str] = {
    "data_dir": "folder of the training data files (default: data)",
    "out_dir": "folder for checkpoints, history and the sample cache; rerun to resume (default: runs/default)",
    "epochs": "number of training epochs (default: 40)",
    "batch_size": "crystals per optimisation step (default: 32)",
    "lr": "peak learning rate of the warm-up + cosine schedule, AdamW (default: 2e-3)",
    "weight_decay": "AdamW weight decay (default: 1e-5)",
    "swa_epochs": "average the weights over the last N epochs (stochastic weight averaging; default: 0, off)",
    "ema_decay": "decay of the exponential moving average of the weights; 0 turns it off (default: 0.995)",
    "element_features": "add the element descriptor table to the species embedding (default: on)",
    "warmup_epochs": "epochs of linear learning-rate warm-up (default: 2)",
    "seed": "seed of the weights and the batch order (default: 0)",
    "split_seed": "seed of the train/val/test split by material id (default: 0; keep it to compare runs)",
    "device": "torch device (default: cuda if available, else cpu)",
    "time_limit_minutes": "stop cleanly after this many minutes (resume later by rerunning)",
    "max_atoms": "skip crystals with more atoms than this (default: 200)",
}


def _log_offsets(samples: list[Sample]) -> dict[str, float]:
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
        name: [make_sample(r, model_cfg.cutoff, model_cfg.elastic_scale) for r in tqdm(recs, desc=f"graphs {name}")]
        for name, recs in splits.items()
    }
    species = sorted({int(z) for r in splits["train"] for z in r.structure.atomic_numbers})
    return samples, dataset_hash(records), species


def _cached_samples(
    cfg: TrainConfig, model_cfg: ModelConfig, cache: Path
) -> tuple[dict[str, list[Sample]], str, list[int]]:
    """:func:`prepare_samples`, cached in the run folder so that a resumed run starts in seconds.

    The cache holds plain tensors only (:func:`gmt_ase.training.samples.load_samples` never unpickles objects)
    and is keyed by the settings that shape it.
    """
    sources = [Path(cfg.data_dir) / name for name in SOURCE_FILES.values()] + [Path(p) for p in cfg.jarvis_pickles]
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sources if p.exists()]
    key = json.dumps(["trusted-piezo-v1", sorted(cfg.sources), stats, cfg.max_atoms, cfg.split_seed, model_cfg.cutoff,
                      model_cfg.elastic_scale])
    cached = load_samples(cache, key)
    if cached is not None:
        splits, extra = cached
        return splits, extra["data_hash"], extra["species"]
    splits, data_hash, species = prepare_samples(cfg, model_cfg)
    save_samples(cache, key, splits, {"data_hash": data_hash, "species": species})
    return splits, data_hash, species


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _lr_factor(epoch: float, cfg: TrainConfig) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    progress = (epoch - cfg.warmup_epochs) / max(1, cfg.epochs - cfg.warmup_epochs)
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def _evaluate_loss(model: GMTNet, samples: list[Sample], cfg: TrainConfig, device: torch.device) -> dict:
    model.eval()
    totals: dict[str, list[float]] = {}
    with torch.no_grad():
        for idx in _batches(len(samples), 64, 0, 0):
            batch = {k: v.to(device) for k, v in collate_samples([samples[i] for i in idx]).items()}
            _, terms = multitask_loss(model(batch), batch, model.config.elastic_scale)
            for name, value in terms.items():
                totals.setdefault(name, []).append(value)
    return {name: float(np.mean(values)) for name, values in totals.items()}


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _device(world: int, requested: str | None) -> torch.device:
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _resume(
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


def _moving_average_copy(model: GMTNet, device: torch.device) -> GMTNet:
    """Build a second model with the same weights, for the moving average.

    It is built fresh: a deep copy of e3nn's compiled tensor products would add their constants to the
    state dict, and the exported checkpoint would no longer load.
    """
    ema = GMTNet(model.config).to(device)
    ema.load_state_dict(model.state_dict())
    return ema.requires_grad_(False)


def _update_ema(ema: GMTNet, model: GMTNet, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for every floating-point parameter."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - decay)


def _train_epoch(
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
            _update_ema(ema, model, cfg.ema_decay)
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) training; return the path of the exported best checkpoint."""
    if not Path(cfg.data_dir).is_dir():
        raise FileNotFoundError(f"training data folder not found: {Path(cfg.data_dir).resolve()} (use --data-dir)")
    rank, world = _distributed()
    device = _device(world, cfg.device)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base_cfg = ModelConfig.from_dict({**ModelConfig().to_dict(), **cfg.model})
    samples, data_hash, species = _cached_samples(cfg, base_cfg, out / "samples.pt")
    model_cfg = ModelConfig.from_dict({
        **base_cfg.to_dict(), "log_offsets": _log_offsets(samples["train"]),
        "element_features": len(ELEMENT_FEATURE_NAMES) if cfg.element_features else 0,
    })
    torch.manual_seed(cfg.seed)
    model = GMTNet(model_cfg)
    if cfg.element_features:
        fill_element_table(model)
    model = model.to(device)
    ema = _moving_average_copy(model, device) if cfg.ema_decay > 0 else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = _resume(out / "last.pt", model, optimizer, device, ema)
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
            group["lr"] = cfg.lr * _lr_factor(epoch, cfg)
        batches = _batches(len(samples["train"]), cfg.batch_size, cfg.seed, epoch)[rank::world]
        train_loss = _train_epoch(trainable, optimizer, batches, samples["train"], cfg, device, rank == 0, epoch, ema)
        if epoch >= cfg.epochs - cfg.swa_epochs:
            swa = _average_into(swa, validated)
        val = _evaluate_loss(validated, samples["val"], cfg, device)
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
            _record_epoch(out, model, optimizer, state, entry, ema)
            if improved:
                save_checkpoint(out / "best.pt", validated, metadata=_metadata(cfg, species, data_hash, entry))
    if swa is not None and rank == 0 and not (out / "swa.pt").exists():
        _finish_swa(swa, model_cfg, samples["val"], cfg, device, state, (species, data_hash))
    return out / "best.pt"


def _average_into(swa: dict | None, model: GMTNet) -> dict:
    """Add the model's weights to their running mean (stochastic weight averaging, last ``swa_epochs``)."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if swa is None:
        return {"count": 1, "state": weights}
    count = swa["count"] + 1
    for key, value in weights.items():
        if value.is_floating_point():
            swa["state"][key] += (value - swa["state"][key]) / count
    swa["count"] = count
    return swa


def _finish_swa(
    swa: dict, model_cfg: ModelConfig, val_samples: list[Sample], cfg: TrainConfig, device: torch.device,
    state: dict, provenance: tuple[list[int], str],
) -> None:
    """Export the averaged model as ``swa.pt``; it also becomes ``best.pt`` if its validation loss is lower."""
    out = Path(cfg.out_dir)
    averaged = GMTNet(model_cfg).to(device)
    averaged.load_state_dict(swa["state"])
    val = _evaluate_loss(averaged, val_samples, cfg, device)
    val_total = float(sum(val.values())) if val else math.inf
    entry = {"epoch": f"swa of {swa['count']} epochs", "val": val, "val_total": val_total,
             "minutes": state["elapsed"] / 60}
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")
    metadata = _metadata(cfg, *provenance, entry)
    save_checkpoint(out / "swa.pt", averaged, metadata=metadata)
    if val_total < state["best_val"]:
        save_checkpoint(out / "best.pt", averaged, metadata=metadata)


def _record_epoch(
    out: Path, model: GMTNet, optimizer: torch.optim.Optimizer, state: dict, entry: dict, ema: GMTNet | None
) -> None:
    """Write ``last.pt`` (atomically) and then the log line: a crash never makes an epoch run twice."""
    snapshot = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": state}
    if ema is not None:
        snapshot["ema"] = ema.state_dict()
    torch.save(snapshot, out / "last.pt.tmp")
    (out / "last.pt.tmp").replace(out / "last.pt")
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _metadata(cfg: TrainConfig, species: list[int], data_hash: str, entry: dict) -> dict:
    return {"name": Path(cfg.out_dir).name, "version": "1", "species": species, "data_hash": data_hash,
            "metrics": {"val_loss": entry["val"], "epoch": entry["epoch"]},
            "training": {"config": asdict(cfg), "minutes": entry["minutes"]}}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``gmt-ase train``: every :class:`TrainConfig` field is a flag; ``--config`` reads JSON."""
    parser = subparsers.add_parser("train", help="train a GMTNet model on tensor data")
    parser.add_argument("--config", help="JSON file with TrainConfig fields (flags override it)")
    for f in fields(TrainConfig):
        if f.name in ("jarvis_pickles", "model", "loss_weights", "sources"):
            continue
        flag = f"--{f.name.replace('_', '-')}"
        help_text = TRAIN_FLAG_HELP[f.name]
        if str(f.type) == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
        parser.add_argument(flag, dest=f.name, type=kind, default=None, help=help_text)
    parser.add_argument("--jarvis-pickle", dest="jarvis_pickles", action="append", default=None,
                        help="also train on a GMTNet/JARVIS pickle (restricted unpickler; repeatable)")
    parser.add_argument("--source", dest="sources", action="append", default=None,
                        help=f"train on these data sources only (repeat; default all: {', '.join(ALL_SOURCES)})")
    parser.add_argument("--model-json", help="JSON dict of ModelConfig overrides, e.g. '{\"invariant_layers\": 4}'")
    parser.set_defaults(func=_run_from_args)
    return parser


def _run_from_args(args: argparse.Namespace) -> int:
    values = json.loads(Path(args.config).read_text()) if args.config else {}
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    if args.model_json:
        values["model"] = json.loads(args.model_json)
    best = train(TrainConfig(**values))
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
