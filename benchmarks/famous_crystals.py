"""Textbook crystals against their DFT values in our data: K_VRH, G_VRH, mean eps_inf and piezo tensors.

For each crystal the data's own structure is predicted (so the comparison is like for like), with the
split it belongs to (most famous crystals are in the training split: a model must fit them). The piezo column
gives the Frobenius norms of the DFT and predicted tensors (C/m^2) and their cosine, on the piezo record's
own structure and frame; it is counted apart from the 25 % tally.
Run from the repository root: ``python benchmarks/famous_crystals.py [--model default]``.
"""

from __future__ import annotations

import argparse

import numpy as np

from gmt_ase import GMTCalculator
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.invariant.invariant_model import network_invariants
from gmt_ase.training.data import load_records, split_by_material
from gmt_ase.training.train_invariants import record_invariants

#: (reduced formula, space-group number) of the crystals a user checks first.
FAMOUS = {
    "Si diamond": ("Si", 227), "C diamond": ("C", 227), "Ge diamond": ("Ge", 227), "NaCl": ("NaCl", 225),
    "MgO": ("MgO", 225), "LiF": ("LiF", 225), "KCl": ("KCl", 225), "Al fcc": ("Al", 225), "Cu fcc": ("Cu", 225),
    "W bcc": ("W", 229), "Mg hcp": ("Mg", 194), "ZnO wurtzite": ("ZnO", 186), "GaN wurtzite": ("GaN", 186),
    "AlN wurtzite": ("AlN", 186), "GaAs": ("GaAs", 216), "SiO2 quartz": ("SiO2", 154),
    "TiO2 rutile": ("TiO2", 136), "Al2O3 corundum": ("Al2O3", 167), "BaTiO3 P4mm": ("BaTiO3", 99),
    "SrTiO3": ("SrTiO3", 221),
}
FIELDS = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    records = load_records("data")
    split_of = {id(r): name for name, rs in split_by_material(records).items() for r in rs}
    calc = GMTCalculator(model=args.model)
    print("| crystal | split | K DFT / ML | G DFT / ML | eps_inf DFT / ML | piezo norm DFT / ML, cosine |")
    print("| --- | --- | --- | --- | --- | --- |")
    within, total, piezo_within, piezo_total = 0, 0, 0, 0
    for label, (formula, number) in FAMOUS.items():
        matches = [r for r in records if r.structure.composition.reduced_formula == formula
                   and r.structure.get_space_group_info()[1] == number]
        if not matches:
            continue
        truth: dict[str, float] = {}
        for record in matches:
            truth.update({k: v for k, v in record_invariants(record.targets).items() if np.isfinite(v)})
        (result,) = calc.predict([matches[0].structure])
        pred = network_invariants({f: voigt_to_full(getattr(result, f)) for f in FIELDS})
        cells = []
        for key in ("k_vrh", "g_vrh", "eps_electronic_mean"):
            if key in truth:
                ok = abs(pred[key] - truth[key]) <= 0.25 * abs(truth[key])
                within, total = within + ok, total + 1
                cells.append(f"{truth[key]:.1f} / {pred[key]:.1f}{'' if ok else ' (!)'}")
            else:
                cells.append(f"- / {pred[key]:.1f}")
        piezo = [r for r in matches if r.targets.get("piezoelectric") is not None]
        if piezo and np.linalg.norm(piezo[0].targets["piezoelectric"]) > 1e-6:
            dft = piezo[0].targets["piezoelectric"]
            (on_record,) = [result] if piezo[0] is matches[0] else calc.predict([piezo[0].structure])
            ml = voigt_to_full(on_record.piezoelectric)
            cosine = float(np.sum(ml * dft) / max(np.linalg.norm(ml) * np.linalg.norm(dft), 1e-30))
            ok = np.linalg.norm(ml - dft) <= 0.25 * np.linalg.norm(dft)
            piezo_within, piezo_total = piezo_within + ok, piezo_total + 1
            cells.append(f"{np.linalg.norm(dft):.2f} / {np.linalg.norm(ml):.2f}, {cosine:+.2f}{'' if ok else ' (!)'}")
        else:
            cells.append("-")
        splits = sorted({split_of[id(r)] for r in matches})
        print(f"| {label} | {','.join(splits)} | " + " | ".join(cells) + " |")
    print(f"\nwithin 25 % of DFT: {within} of {total} values ((!) marks the others); non-zero piezo tensors within "
          f"25 % (Frobenius): {piezo_within} of {piezo_total}")


if __name__ == "__main__":
    main()
