"""Ship a trained checkpoint as package data: copy it, record its sha256 and write its model card.

``python -m gmt_ase.evaluation.release runs/ensemble.pt --combine runs/a/best.pt runs/b/best.pt`` first combines
several trained models into one ensemble checkpoint (their mean).

``python -m gmt_ase.evaluation.release runs/default/best.pt --metrics reports/metrics.json --name default
--out-dir DIR``
writes ``DIR/<name>.pt``, ``<name>.json`` (machine-readable card, read by
:func:`gmt_ase.inference.io.resolve_model_path`) and ``<name>.md`` (human-readable card). Shipping into the
package's own ``gmt_ase/models`` folder (what a release of gmt_ase does) needs ``--install`` instead of
``--out-dir``: nothing is written into an installed package by default.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from gmt_ase.evaluation.reports import format_table
from gmt_ase.inference.io import file_sha256, load_checkpoint, save_atomically, save_checkpoint
from gmt_ase.nn.model import GMTEnsemble, GMTNet

__all__ = ["PACKAGE_MODELS", "combine_checkpoints", "write_model_card", "main"]

#: The shipped models' folder inside the package; written only with ``--install``.
PACKAGE_MODELS = Path(str(resources.files("gmt_ase.models")))

_LIMITS = [
    "Trained on ~6k Materials Project PBE tensors (2015-2017 DFPT/finite-strain data): expect errors of "
    "the size given in the metrics, larger for chemistries far from the training set.",
    "Elements outside `species` are refused, not extrapolated.",
    "Dielectric predictions near ferroelectric soft modes (very large ionic parts) are unreliable.",
    "Piezoelectric signs follow the structure's Cartesian frame; tensors of some training records may "
    "have had flipped signs (frames 'repaired'/'optimized' in the source data).",
    "Predictions are ground-state, 0 K, PBE-level quantities; no temperature or functional corrections.",
]


def write_model_card(
    checkpoint: Path,
    metrics: dict[str, Any],
    out_dir: Path,
    name: str,
    notes: list[str] | None = None,
    version: str | None = None,
) -> Path:
    """Copy ``checkpoint`` to ``out_dir/<name>.pt`` and write its JSON and Markdown model cards.

    ``version`` is the release version of the named model (default: the checkpoint's own). It is written
    into the shipped checkpoint's metadata as well as the card, so both always say the same.
    """
    loaded = load_checkpoint(checkpoint)  # refuse to ship anything that does not load
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.pt"
    version = str(version or loaded.metadata.get("version"))
    _copy_with_version(checkpoint, target, version)
    meta = {**loaded.metadata, "version": version}
    card = {
        "name": name,
        "file": target.name,
        "sha256": file_sha256(target),
        "version": meta["version"],
        "released": date.today().isoformat(),
        "format_version": meta["format_version"],
        "config": meta["config"],
        "species": meta["species"],
        "cutoff": meta["cutoff"],
        "data_hash": meta.get("data_hash"),
        "library_versions": meta.get("library_versions"),
        "training": meta.get("training"),
        "validation": meta.get("metrics"),
        "test_metrics": metrics,
        "notes": list(notes or []),
        "limits": _LIMITS,
        "data": "Materials Project via matminer 0.4.1 (Petousis 2017, de Jong 2015 x2), StrainTensorNet MP "
        "validation set, MatCalc MP binary K/G; CC BY 4.0. See data/README.md.",
    }
    card_path = out_dir / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(_markdown(card))
    return card_path


def _copy_with_version(checkpoint: Path, target: Path, version: str) -> None:
    """Copy ``checkpoint`` to ``target``, its metadata ``version`` set to the release version."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if payload.get("version") == version:
        shutil.copyfile(checkpoint, target)
        return
    save_atomically({**payload, "version": version}, target)


def _common_element_features(models: list[GMTNet]) -> list[GMTNet]:
    """Give members without the element descriptor table the table of those with it, unused.

    A member trained without element features gets the same table and a zero projection: its
    predictions are exactly unchanged, and the ensemble keeps one configuration for all members.
    """
    with_table = [m for m in models if m.config.element_features]
    if not with_table or len(with_table) == len(models):
        return models
    reference = with_table[0]
    upgraded = []
    for model in models:
        if model.config.element_features:
            upgraded.append(model)
            continue
        config = replace(model.config, element_features=reference.config.element_features)
        member = GMTNet(config)
        state = {**model.state_dict(), "element_table": reference.element_table.detach().clone(),
                 "element_projection.weight": torch.zeros_like(reference.element_projection.weight)}
        member.load_state_dict(state)
        upgraded.append(member.eval())
    return upgraded


def combine_checkpoints(paths: list[Path], out: Path) -> str:
    """Write an ensemble checkpoint whose members are the models in ``paths`` (same configuration).

    The ensemble predicts the mean of its members; it supports only the elements every member was
    trained on. Returns the sha256 of the written file.
    """
    loaded = [load_checkpoint(path) for path in paths]
    if any(isinstance(item.model, GMTEnsemble) for item in loaded):
        raise ValueError("ensemble members must be single models")
    models = _common_element_features([item.model for item in loaded])
    configs = {json.dumps(model.config.to_dict(), sort_keys=True) for model in models}
    if len(configs) != 1:
        raise ValueError("ensemble members must share one model configuration")
    ensemble = GMTEnsemble(models[0].config, len(models))
    for member, model in zip(ensemble.members, models, strict=True):
        member.load_state_dict(model.state_dict())
    species = sorted(set.intersection(*(set(item.species) for item in loaded)))
    hashes = sorted({item.metadata.get("data_hash", "") for item in loaded})
    metadata = {
        "name": out.stem,
        "version": "1",
        "species": species,
        "data_hash": hashes[0] if len(hashes) == 1 else "+".join(hashes),
        "metrics": {"members": [item.metadata.get("metrics") for item in loaded]},
        "training": {"members": [
            {"file": str(path), "sha256": item.sha256, "training": item.metadata.get("training")}
            for path, item in zip(paths, loaded, strict=True)
        ]},
    }
    return save_checkpoint(out, ensemble, metadata=metadata)


def _markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# gmt_ase model card: `{card['name']}`",
        "",
        f"- file `{card['file']}`, sha256 `{card['sha256']}`",
        f"- version {card['version']}, released {card['released']}, checkpoint format {card['format_version']}, "
        f"cutoff {card['cutoff']} A",
        f"- {len(card['species'])} elements: Z = {card['species']}",
        f"- data: {card['data']}",
        "",
        "## Test-split metrics",
        "",
        "Held-out materials (joint split by material id, seed 0); GMTNet protocol: Fnorm = mean Frobenius error of",
        "the stored 3x3 / 3x6 / 6x6 arrays, EwT_t = share with relative Frobenius error below t. Per crystal",
        "system and per source: `default.json`.",
        "",
        "```",
        format_table(card["test_metrics"]),
        "```",
        "",
        "## Notes",
        *[f"- {note}" for note in card["notes"]],
        "",
        "## Known limits",
        *[f"- {limit}" for limit in card["limits"]],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="gmt_ase.evaluation.release", description=__doc__)
    parser.add_argument("checkpoint", type=Path, help="model to ship (with --combine: the ensemble file to write)")
    parser.add_argument("--combine", type=Path, nargs="+", help="write an ensemble of these checkpoints and stop")
    parser.add_argument("--metrics", type=Path, help="metrics.json from gmt-ase evaluate (required to ship)")
    parser.add_argument("--name", default="default")
    parser.add_argument("--version", default=None, help="release version of the named model")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out-dir", type=Path, help="folder to write the model and its cards to")
    where.add_argument("--install", action="store_true", help=f"write into the package itself ({PACKAGE_MODELS})")
    parser.add_argument("--note", action="append", default=None, help="a line for the card (repeatable)")
    args = parser.parse_args(argv)
    if args.combine:
        print(f"{args.checkpoint}: sha256 {combine_checkpoints(args.combine, args.checkpoint)}")
        return 0
    if args.metrics is None:
        parser.error("--metrics is required to ship a model")
    if args.out_dir is None and not args.install:
        parser.error("give --out-dir DIR, or --install to write into the installed package")
    out_dir = PACKAGE_MODELS if args.install else args.out_dir
    metrics = json.loads(args.metrics.read_text())
    print(write_model_card(args.checkpoint, metrics, out_dir, args.name, args.note, args.version))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
