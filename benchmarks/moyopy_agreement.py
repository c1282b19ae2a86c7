"""Does moyopy find the same point-group operations as spglib on every data crystal? (issue 20, item 2)

gmt_ase's symmetry (DESIGN.md section 3, :func:`gmt_ase.core.symmetry.analyze_cell`) is one spglib dataset
search per crystal plus database look-ups. moyopy (``pip install moyopy``) searches about 7x faster. It may
replace spglib only if it agrees on every crystal of the data files at gmt_ase's tolerances, so this
script runs both routes on every structure of ``data/`` (all six sources, 7,000+ structures) at each
``--symprec`` and counts agreements:

* the space-group number and Hall number (moyopy with ``Setting.spglib()``);
* the point-group operations: the moyopy route below builds them exactly as gmt_ase does, from the
  database rotations of moyopy's Hall number in the conventional basis ``lattice.T @ std_linear``
  (spglib's ``A P^-1``, unidealised, input orientation), then the same Weyl orthogonalisation; the two
  sets of Cartesian matrices must match to 1e-9;
* the number of Wyckoff orbits (``n_orbits``) and the standard frame (``standard_rotation`` exactly, and
  up to an operation of the standard lattice's holohedry).

It also reports the CPU time of each search. Usage::

    pip install moyopy
    python benchmarks/moyopy_agreement.py [--symprec 0.01 0.1] [--limit N] [--json out.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import spglib

from gmt_ase.core.symmetry import SymmetryInfo, _cartesian_operations, analyze_cell, lattice_operations

SOURCES = (
    "matminer_mp_tensors_2018/dielectric_petousis2017.json.gz",
    "matminer_mp_tensors_2018/piezoelectric_dejong2015.json.gz",
    "matminer_mp_tensors_2018/elastic_dejong2015.json.gz",
    "strainnet_mp_elastic_val/mp_elastic_strainnet.json.gz",
    "matcalc_mp_binary_elasticity/mp-binary-pbe-elasticity-2025.1-pool.json.gz",
    "matten-mp-elastic-example/example_crystal_elasticity_tensor_n98.json",
)


def data_cells(data_dir: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(source, lattice rows, fractional positions, atomic numbers) of every structure in the data files."""
    from pymatgen.core import Structure

    cells = []
    for name in SOURCES:
        path = data_dir / name
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            content = json.load(handle)
        if isinstance(content, dict) and "records" in content:
            structures = [record["structure"] for record in content["records"]]
        elif isinstance(content, dict):  # the MatTen example: columns of row-keyed dictionaries
            structures = list(content["structure"].values())
        else:
            structures = [record["structure"] for record in content]
        for data in structures:
            structure = Structure.from_dict(data)
            numbers = np.array([site.specie.Z for site in structure], dtype=int)
            cells.append((name.split("/")[0], structure.lattice.matrix, structure.frac_coords, numbers))
    return cells


def moyopy_route(lattice: np.ndarray, scaled: np.ndarray, numbers: np.ndarray, symprec: float) -> tuple[Any, Any]:
    """(moyopy dataset, SymmetryInfo built as gmt_ase builds spglib's)."""
    import moyopy

    cell = moyopy.Cell(lattice.tolist(), scaled.tolist(), numbers.tolist())
    dataset = moyopy.MoyoDataset(cell, symprec=symprec, setting=moyopy.Setting.spglib())
    database = spglib.get_symmetry_from_database(dataset.hall_number)
    kind = spglib.get_spacegroup_type(dataset.hall_number)
    rotations = np.unique(np.asarray(database["rotations"], dtype=int), axis=0)
    conventional = (lattice.T @ np.asarray(dataset.std_linear, dtype=float)).T
    info = SymmetryInfo(
        space_group_symbol=str(kind.international_short),
        space_group_number=int(dataset.number),
        point_group=str(kind.pointgroup_international),
        symprec=symprec,
        operations=_cartesian_operations(rotations, conventional),
        n_orbits=len(set(dataset.orbits)),
        standard_rotation=np.array(dataset.std_rotation_matrix, dtype=float),
        standard_lattice=np.array(dataset.std_cell.basis, dtype=float),
    )
    return dataset, info


def same_operations(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether two sets of (G, 3, 3) matrices are equal as sets, to ``tol``."""
    if len(a) != len(b):
        return False
    distance = np.abs(a[:, None] - b[None]).reshape(len(a), len(b), 9).max(-1)  # (G, G)
    return bool(np.all(distance.min(1) < tol) and np.all(distance.min(0) < tol))


def same_frame_up_to_holohedry(reference: SymmetryInfo, other: SymmetryInfo) -> bool:
    """Whether ``other.standard_rotation`` is ``H @ reference.standard_rotation`` for a holohedry operation H."""
    if not np.allclose(reference.standard_lattice, other.standard_lattice, atol=1e-6):
        return False
    holohedry = lattice_operations(reference.standard_lattice)
    candidates = holohedry @ reference.standard_rotation  # (H, 3, 3)
    return bool(np.min(np.abs(candidates - other.standard_rotation).reshape(len(candidates), 9).max(1)) < 1e-6)


def _summary(info: SymmetryInfo) -> str:
    return f"{info.space_group_symbol} ({info.point_group}, {len(info.operations)} ops)"


def compare(cells: list, symprec: float) -> dict[str, Any]:
    """Agreement counts and CPU times of the two routes at one tolerance."""
    import moyopy

    counts: Counter[str] = Counter()
    disagreements = []
    spglib_cpu = moyopy_cpu = 0.0
    for index, (source, lattice, scaled, numbers) in enumerate(cells):
        start = time.process_time()
        reference = analyze_cell(lattice, scaled, numbers, symprec)
        spglib_cpu += time.process_time() - start
        start = time.process_time()
        moyopy.MoyoDataset(moyopy.Cell(lattice.tolist(), scaled.tolist(), numbers.tolist()), symprec=symprec)
        moyopy_cpu += time.process_time() - start
        dataset, other = moyopy_route(lattice, scaled, numbers, symprec)
        hall = spglib.get_symmetry_dataset((lattice, scaled, numbers), symprec=symprec).hall_number
        checks = {
            "space group": reference.space_group_number == other.space_group_number,
            "Hall number": hall == dataset.hall_number,
            "point group": reference.point_group == other.point_group,
            "operations": same_operations(reference.operations, other.operations),
            "n_orbits": reference.n_orbits == other.n_orbits,
            "standard frame, exactly": np.allclose(reference.standard_rotation, other.standard_rotation, atol=1e-6),
            "standard frame, up to holohedry": same_frame_up_to_holohedry(reference, other),
        }
        counts.update(name for name, ok in checks.items() if ok)
        if not checks["operations"]:
            disagreements.append(
                {
                    "index": index,
                    "source": source,
                    "atoms": len(numbers),
                    "spglib": _summary(reference),
                    "moyopy": _summary(other),
                }
            )
    return {
        "symprec": symprec,
        "crystals": len(cells),
        "agree": dict(counts),
        "operation_disagreements": disagreements,
        "spglib_ms_per_crystal": 1e3 * spglib_cpu / len(cells),
        "moyopy_ms_per_crystal": 1e3 * moyopy_cpu / len(cells),
    }


def main() -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--symprec", type=float, nargs="+", default=[1e-2, 0.1], help="tolerances, Angstrom")
    parser.add_argument("--limit", type=int, help="only the first N structures (smoke test)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    import logging

    logging.getLogger("moyo").setLevel(logging.ERROR)  # a script: its own logging only
    cells = data_cells(args.data_dir)[: args.limit]
    results = [compare(cells, symprec) for symprec in args.symprec]
    for result in results:
        print(
            f"symprec {result['symprec']} A, {result['crystals']} crystals: "
            f"spglib {result['spglib_ms_per_crystal']:.2f} ms, moyopy {result['moyopy_ms_per_crystal']:.2f} ms "
            "per crystal (CPU, search only)"
        )
        for name, count in result["agree"].items():
            print(f"  {name}: {count} / {result['crystals']} agree")
        for row in result["operation_disagreements"]:
            print(f"  differs: {row}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
