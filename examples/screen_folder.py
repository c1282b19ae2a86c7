"""Screen a folder of structures: predict all, print a table, select the stiff ones (K_VRH > threshold).

Run ``python examples/screen_folder.py [FOLDER] [--min-k 100]``; the default folder is
``examples/structures``. For large screens use the resumable command line tool ``gmt-ase predict``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase.io import iread

from gmt_ase import predict_tensors
from gmt_ase.core.derived import DERIVED_UNITS

STRUCTURES = Path(__file__).resolve().parent / "structures"
SUFFIXES = {".cif", ".vasp", ".extxyz"}


def read_folder(folder: Path) -> tuple[list[str], list]:
    names, structures = [], []
    for path in sorted(folder.iterdir()):
        if path.suffix in SUFFIXES or path.name.startswith("POSCAR"):
            fmt = "vasp" if path.name.startswith("POSCAR") else None
            for frame, atoms in enumerate(iread(path, index=":", format=fmt)):
                names.append(f"{path.name}@{frame}")
                structures.append(atoms)
    return names, structures


def fmt(value: float | None, spec: str = "8.1f") -> str:
    return format(value, spec) if value is not None else format("-", ">" + spec.split(".")[0])


COLUMNS = {"k_vrh": "K_VRH", "g_vrh": "G_VRH", "eps_electronic_mean": "eps_inf", "eij_max": "e_max"}


def header() -> str:
    """Column titles with their units, e.g. ``K_VRH [GPa]`` (dimensionless quantities carry ``[-]``)."""
    titles = [f"{title} [{DERIVED_UNITS[key] if DERIVED_UNITS[key] != '1' else '-'}]" for key, title in COLUMNS.items()]
    return f"{'structure':32s} {'space group':>12s} " + " ".join(f"{t:>13s}" for t in titles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=STRUCTURES)
    parser.add_argument("--min-k", type=float, default=100.0, help="K_VRH threshold in GPa (default 100)")
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    args = parser.parse_args()

    names, structures = read_folder(args.folder)
    results = predict_tensors(structures, model=args.model)
    print(header())
    selected = []
    for name, result in zip(names, results, strict=True):
        if not result.ok:
            print(f"{name:32s} failed: {result.error_type}: {result.message}")
            continue
        d = result.derived
        print(
            f"{name:32s} {result.symmetry['space_group_symbol']:>12s} {fmt(d['k_vrh'], '13.1f')} "
            f"{fmt(d['g_vrh'], '13.1f')} {fmt(d['eps_electronic_mean'], '13.2f')} {fmt(d['eij_max'], '13.3f')}"
        )
        if d["k_vrh"] is not None and d["k_vrh"] > args.min_k:
            selected.append(name)
    print(f"\nK_VRH > {args.min_k:g} GPa: {', '.join(selected) if selected else 'none'}")


if __name__ == "__main__":
    main()
