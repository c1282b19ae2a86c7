"""Regenerate ``gmt_ase/invariant/training_stats.json``, the reference of :mod:`gmt_ase.invariant.applicability`.

Usage::

    python -m gmt_ase.training.applicability_stats data            # writes gmt_ase/invariant/training_stats.json
    python -m gmt_ase.training.applicability_stats data -o out.json

Statistics over every record that :func:`gmt_ase.training.data.load_records` keeps (all splits: the material ids
held out of the data files are not in them anyway): number of crystals per element and target family,
ranges of the output invariants (0.1 to 99.9 percentiles), and the structure ranges (volume per atom,
widest empty gap with its 99.9 percentile, closest distance of every element pair).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gmt_ase.core.tensors import full_to_voigt
from gmt_ase.invariant.applicability import (
    STATS_FILE,
    is_likely_metallic,
    largest_gap,
    output_invariants,
    pair_min_distances,
    volume_per_atom,
)

__all__ = ["FAMILIES", "compute_stats", "main"]

#: Target family of each data source.
FAMILIES: dict[str, str] = {
    "dielectric": "dielectric",
    "piezoelectric": "piezoelectric",
    "elastic": "elastic",
    "elastic_strainnet": "elastic",
    "elastic_binary": "elastic",
    "elastic_matten": "elastic",
    "jarvis": "elastic",
}


def _record_invariants(targets: dict[str, np.ndarray]) -> dict[str, float]:
    zero3, zero36, zero66 = np.zeros((3, 3)), np.zeros((3, 6)), np.eye(6)
    eps_el = targets.get("dielectric_electronic", zero3)
    eps_ion = targets.get("dielectric_ionic", zero3)
    piezo = full_to_voigt(targets["piezoelectric"]) if "piezoelectric" in targets else zero36
    elastic = full_to_voigt(targets["elastic"]) if "elastic" in targets else zero66
    values = output_invariants(eps_el, eps_ion, piezo, elastic)
    keep = set()
    if "dielectric_electronic" in targets:
        keep |= {"eps_electronic_mean", "eps_total_mean"} if "dielectric_ionic" in targets else {"eps_electronic_mean"}
    if "piezoelectric" in targets:
        keep.add("piezo_max_abs")
    if "elastic" in targets:
        keep |= {"k_vrh", "g_vrh", "elastic_max_abs"}
    out = {key: values[key] for key in keep}
    for key in ("k_vrh", "g_vrh"):
        if key in targets:
            out[key] = float(targets[key])
    return out


def _robust_range(values: list[float]) -> list[float]:
    """0.1 and 99.9 percentiles: the data files hold a few broken tensors (e.g. K_VRH of -6685 GPa)."""
    low, high = np.percentile(np.asarray(values, dtype=float), [0.1, 99.9])
    return [round(float(low), 4), round(float(high), 4)]


def compute_stats(records: Sequence[Any]) -> dict[str, Any]:
    """Training statistics of ``records`` (:class:`gmt_ase.training.data.TensorRecord`), as a JSON-safe dict."""
    crystals: dict[str, set[str]] = defaultdict(set)
    elements: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    values: dict[str, list[float]] = defaultdict(list)
    vpa, gaps, pairs = [], [], {}
    metallic: list[str] = []
    for record in records:
        family = FAMILIES.get(record.source, record.source)
        structure = record.structure
        symbols = {el.symbol for el in structure.composition}
        crystals[family].add(record.material_id)
        for symbol in symbols:
            elements[family][symbol].add(record.material_id)
        if family != "elastic" and is_likely_metallic(structure.composition.get_el_amt_dict()):
            metallic.append(f"{record.material_id} {structure.composition.reduced_formula} ({family})")
        for key, value in _record_invariants(record.targets).items():
            if np.isfinite(value):
                values[key].append(value)
        cell, positions = structure.lattice.matrix, structure.cart_coords
        vpa.append(volume_per_atom(cell, len(structure)))
        gaps.append(largest_gap(positions, cell))
        numbers = np.array([site.specie.Z for site in structure])
        for key, d in pair_min_distances(numbers, positions, cell).items():
            pairs[key] = min(d, pairs.get(key, np.inf))
    return {
        "description": "statistics of the training records (gmt_ase.training.data.load_records), all splits; "
        "regenerate with `python -m gmt_ase.training.applicability_stats data`",
        "n_crystals": {family: len(ids) for family, ids in sorted(crystals.items())},
        "element_counts": {
            family: {symbol: len(ids) for symbol, ids in sorted(by_symbol.items())}
            for family, by_symbol in sorted(elements.items())
        },
        "ranges": {key: _robust_range(v) for key, v in sorted(values.items())},
        "structure": {
            "volume_per_atom": [round(min(vpa), 3), round(max(vpa), 3)],
            "largest_gap": [round(min(gaps), 3), round(max(gaps), 3)],
            "largest_gap_p999": round(float(np.percentile(gaps, 99.9)), 3),
        },
        "pair_min_distance": {key: round(d, 3) for key, d in sorted(pairs.items())},
        "likely_metallic_insulator_records": metallic,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: load the records of a data directory and write the statistics JSON."""
    from gmt_ase.training.data import load_records

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="the repository's data/ directory")
    default_output = Path(str(resources.files("gmt_ase.invariant"))) / STATS_FILE
    parser.add_argument("-o", "--output", type=Path, default=default_output)
    args = parser.parse_args(argv)
    stats = compute_stats(load_records(args.data_dir))
    args.output.write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {stats['n_crystals']} crystals per family")


if __name__ == "__main__":
    main()
