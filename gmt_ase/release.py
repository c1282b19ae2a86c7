"""Ship a trained checkpoint as package data: copy it, record its sha256 and write its model card.

``python -m gmt_ase.release runs/default/best.pt --metrics reports/metrics.json --name default``
writes ``gmt_ase/models/<name>.pt``, ``<name>.json`` (machine-readable card, read by
:func:`gmt_ase.io.resolve_model_path`) and ``<name>.md`` (human-readable card).
"""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from gmt_ase.io import file_sha256, load_checkpoint
from gmt_ase.reports import format_table

__all__ = ["write_model_card", "main"]

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
    checkpoint: Path, metrics: dict[str, Any], out_dir: Path, name: str, notes: list[str] | None = None
) -> Path:
    """Copy ``checkpoint`` to ``out_dir/<name>.pt`` and write its JSON and Markdown model cards."""
    loaded = load_checkpoint(checkpoint)  # refuse to ship anything that does not load
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.pt"
    shutil.copyfile(checkpoint, target)
    meta = loaded.metadata
    card = {
        "name": name,
        "file": target.name,
        "sha256": file_sha256(target),
        "version": meta.get("version"),
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


def _markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# gmt_ase model card: `{card['name']}`",
        "",
        f"- file `{card['file']}`, sha256 `{card['sha256']}`",
        f"- released {card['released']}, checkpoint format {card['format_version']}, cutoff {card['cutoff']} A",
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
    parser = argparse.ArgumentParser(prog="gmt_ase.release", description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--metrics", type=Path, required=True, help="metrics.json from gmt-ase evaluate")
    parser.add_argument("--name", default="default")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "models")
    parser.add_argument("--note", action="append", default=None, help="a line for the card (repeatable)")
    args = parser.parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    print(write_model_card(args.checkpoint, metrics, args.out_dir, args.name, args.note))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
