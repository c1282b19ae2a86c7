"""How often the metal warning fires on the data files: false positives on insulators, hits on the elastic pools.

The dielectric and piezoelectric records are DFPT calculations of insulators (the dielectric file's band gaps
are all >= 0.11 eV), so every warned record there is a false positive; the elastic files hold no band gap or
metal flag, so their warned shares only show the rule's reach (intermetallics, carbides, nitrides, borides).

Run from the repository root: ``python benchmarks/metal_warning.py [--data-dir data]``.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from gmt_ase.invariant.metallicity import metal_reason
from gmt_ase.training.data import load_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="benchmarks/results/metal_warning.json")
    args = parser.parse_args()
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    flagged: dict[str, list[str]] = defaultdict(list)
    for record in load_records(args.data_dir):
        composition = record.structure.composition
        reason = metal_reason(composition.get_el_amt_dict())
        clause = "none" if reason is None else ("no nonmetal" if reason == "no nonmetal element" else "interstitial")
        counts[record.source]["records"] += 1
        counts[record.source][clause] += 1
        if reason is not None and record.source in ("dielectric", "piezoelectric"):
            flagged[record.source].append(f"{record.material_id} {composition.reduced_formula} ({clause})")
    report = {
        "counts": {source: dict(c) for source, c in counts.items()},
        "false_positive_share": {
            source: (counts[source]["records"] - counts[source]["none"]) / counts[source]["records"]
            for source in ("dielectric", "piezoelectric")
        },
        "flagged_insulators": dict(flagged),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
