"""The model card of ``gmt-ase info``: what a user needs to judge a model, and nothing from its training runs.

A shipped model's card is its release card (``gmt_ase/models/<name>.json``, the same text as ``<name>.md``):
version, training data, test-split metrics beside the composition baseline, notes and limits. A checkpoint
file has no release card: its name, version, checksum, cutoff and elements are shown, and the missing test
metrics are said to be missing. Members' file paths, training configurations (scratch folders) and
validation losses are never shown.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from gmt_ase.graph.validation import MAX_ATOMS

__all__ = ["BASELINE_TEST", "card_json", "model_card", "render_card"]

#: The composition baseline on the test split (descriptor trees fitted on the training split, issue 9;
#: ``benchmarks/baseline_descriptors.py``, raw numbers in ``benchmarks/results/baseline_descriptors.json``,
#: checked by tests/test_cli_fixes.py): K_VRH and G_VRH MAE in GPa on full tensors and on the binaries.
#: A release card's own ``"baseline"`` entry, if it has one, takes precedence.
BASELINE_TEST: dict[str, dict[str, float]] = {
    "k_vrh": {"full_tensors": 11.79, "binaries": 11.91},
    "g_vrh": {"full_tensors": 13.16, "binaries": 12.64},
}
_GENERAL_LIMITS = [
    f"Structures of more than {MAX_ATOMS} atoms are refused (cost and memory grow with the atom count).",
    "Disordered (partial-occupancy) structures are refused; order them first.",
]
_WIDTH = 110
_SPECIES_LIMIT = "Elements outside the model's species are refused, not extrapolated."  # release cards say it


def _shipped(model: str) -> dict[str, Any] | None:
    from gmt_ase.inference.io import is_model_name, shipped_card

    return shipped_card(model) if is_model_name(model) else None


def _model_kg(metrics: dict[str, Any]) -> dict[str, dict[str, float]] | None:
    """K/G MAE of the model on full tensors and binaries, from a card's test metrics."""
    targets = metrics.get("targets", {})
    full = targets.get("elastic", {}).get("kg", {}).get("overall")
    binary = targets.get("elastic_binary", {}).get("kg", {}).get("overall")
    if not full or not binary:
        return None
    return {key: {"full_tensors": full[f"{key}_mae"], "binaries": binary[f"{key}_mae"]} for key in ("k_vrh", "g_vrh")}


def model_card(model: str, metadata: dict[str, Any], sha256: str) -> dict[str, Any]:
    """Return the user-facing card of ``model`` as a JSON-safe dict (no training paths, no member details)."""
    release = _shipped(model) or {}
    card: dict[str, Any] = {
        "name": metadata.get("name"),
        "version": str(metadata.get("version")),
        "released": release.get("released"),
        "sha256": sha256,
        "gmt_ase_version": (metadata.get("library_versions") or {}).get("gmt_ase"),
        "cutoff": float(metadata["cutoff"]),
        "species": sorted(int(z) for z in metadata["species"]),
        "training_data": release.get("data"),
        "test_metrics": release.get("test_metrics"),
        "baseline_test": release.get("baseline", BASELINE_TEST),
        "notes": list(release.get("notes") or []),
        "limits": [*(release.get("limits") or [_SPECIES_LIMIT]), *_GENERAL_LIMITS],
    }
    card["model_test_kg"] = _model_kg(card["test_metrics"]) if card["test_metrics"] else None
    return card


def _species_text(species: list[int]) -> str:
    from ase.data import chemical_symbols

    return f"{len(species)} elements, {chemical_symbols[species[0]]}-{chemical_symbols[species[-1]]}"


def _baseline_lines(card: dict[str, Any]) -> list[str]:
    model, base = card["model_test_kg"], card["baseline_test"]
    if model is None:
        return []
    lines = [
        "",
        "Against the composition baseline (descriptor trees fitted on the training split, same test split):",
        f"  {'MAE in GPa, full tensors / binaries':<38}{'this model':>16}{'baseline':>16}",
    ]
    for key, label in (("k_vrh", "K_VRH"), ("g_vrh", "G_VRH")):
        ours = f"{model[key]['full_tensors']:.2f} / {model[key]['binaries']:.2f}"
        theirs = f"{base[key]['full_tensors']:.2f} / {base[key]['binaries']:.2f}"
        lines.append(f"  {label:<38}{ours:>16}{theirs:>16}")
    lines.append("  (mean eps, piezo norm against the baseline: benchmarks/README.md in the repository)")
    return lines


def render_card(card: dict[str, Any]) -> str:
    """Render :func:`model_card` as plain text for a terminal."""
    from gmt_ase.evaluation.reports import format_table

    released = f", released {card['released']}" if card["released"] else ""
    lines = [
        f"gmt_ase model {card['name']!r}, version {card['version']}{released}",
        f"  sha256 {card['sha256']}",
        f"  made with gmt_ase {card['gmt_ase_version']}; cutoff {card['cutoff']} A; {_species_text(card['species'])}",
        f"  training data: {card['training_data'] or 'not recorded (not a released model)'}",
    ]
    if card["test_metrics"]:
        lines += [
            "",
            "Test split: materials held out of training and model selection (split by material id, seed 0;",
            "GMTNet protocol: Fnorm = mean Frobenius error, EwT_t = share with relative error below t):",
            format_table(card["test_metrics"]),
        ]
        lines += _baseline_lines(card)
    else:
        lines += [
            "",
            "Test metrics: none recorded (a checkpoint file, not a released model; measure them with gmt-ase evaluate)",
        ]
    if card["notes"]:
        lines += ["", "Notes:", *map(_item, card["notes"])]
    lines += ["", "Limits:", *map(_item, card["limits"])]
    return "\n".join(lines)


def _item(text: str) -> str:
    return textwrap.fill(text, width=_WIDTH, initial_indent="- ", subsequent_indent="  ")


def card_json(card: dict[str, Any]) -> str:
    """Return the card as indented JSON (``gmt-ase info --json``)."""
    return json.dumps(card, indent=2, default=str)
