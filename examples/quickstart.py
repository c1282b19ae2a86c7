"""Quickstart: predict the tensors of Si, ZnO and BaTiO3 with the shipped model and print them.

Run ``python examples/quickstart.py`` (a few seconds on a CPU). ``--model PATH`` uses another checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.io import read

from gmt_ase import GMTCalculator

STRUCTURES = Path(__file__).resolve().parent / "structures"
EXAMPLES = {"Si": "Si_diamond.cif", "ZnO": "ZnO_wurtzite.vasp", "BaTiO3": "BaTiO3_P4mm.cif"}


def show(name: str, atoms, calc: GMTCalculator) -> None:
    atoms.calc = calc
    eps = calc.get_property("dielectric_tensor", atoms)  # electronic (high-frequency), 3x3
    eps_total = calc.get_property("dielectric_tensor_total", atoms)
    piezo = calc.get_property("piezoelectric_tensor", atoms)  # 3x6 Voigt, C/m^2
    elastic = calc.get_property("elastic_tensor", atoms)  # 6x6 Voigt, GPa
    derived = calc.get_derived_properties(atoms)
    print(f"=== {name}: {calc.results['space_group']} (point group {calc.results['point_group']}) ===")
    print("dielectric, electronic:\n", np.array2string(eps, precision=3, suppress_small=True))
    print("dielectric, total:\n", np.array2string(eps_total, precision=3, suppress_small=True))
    print("piezoelectric e (C/m^2):\n", np.array2string(piezo, precision=3, suppress_small=True))
    print("elastic C (GPa):\n", np.array2string(elastic, precision=1, suppress_small=True))
    print(
        f"K_VRH = {derived['k_vrh']:.1f} GPa, G_VRH = {derived['g_vrh']:.1f} GPa, "
        f"n = {derived['refractive_index']:.3f}, max e_long = {derived['eij_max']:.3f} C/m^2, "
        f"Born stable: {derived['born_stable']}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    args = parser.parse_args()
    calc = GMTCalculator(model=args.model)
    print(f"model: {calc.model_info}\n")
    for name, filename in EXAMPLES.items():
        show(name, read(STRUCTURES / filename), calc)


if __name__ == "__main__":
    main()
