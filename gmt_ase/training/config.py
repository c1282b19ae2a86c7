"""Settings of a training run (:class:`TrainConfig`) and the ``gmt-ase train`` flags generated from them."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from gmt_ase.training.data import ALL_SOURCES

__all__ = ["TRAIN_FLAG_HELP", "TrainConfig", "add_arguments", "config_from_args"]


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :class:`TrainConfig` field (help from :data:`TRAIN_FLAG_HELP`), plus ``--config``."""
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


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build the :class:`TrainConfig` of parsed flags: ``--config`` JSON first, flags given on top of it."""
    values = json.loads(Path(args.config).read_text()) if args.config else {}
    for f in fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    if args.model_json:
        values["model"] = json.loads(args.model_json)
    return TrainConfig(**values)
