"""Textbook crystals for the physics-guarantee checks, built from their space groups (no data files).

Lattice parameters are room-temperature experimental values; the checks compare a model with itself
(the same crystal written differently, rattled or strained), so the exact numbers do not matter.
"""

from __future__ import annotations

from collections.abc import Callable

from ase import Atoms
from ase.build import bulk
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

__all__ = ["CENTROSYMMETRIC", "TEXTBOOK_CRYSTALS", "build_textbook", "cubic_batio3"]


def _from_spacegroup(group: str, lattice: Lattice, species: list[str], coords: list[list[float]]) -> Atoms:
    return AseAtomsAdaptor.get_atoms(Structure.from_spacegroup(group, lattice, species, coords))


def cubic_batio3(ti_shift: float = 0.0) -> Atoms:
    """Cubic perovskite BaTiO3 (a = 4.00 A) with Ti moved by ``ti_shift`` Angstrom along z."""
    atoms = bulk("Ba", "sc", a=4.0)
    atoms += Atoms("TiO3", scaled_positions=[[0.5, 0.5, 0.5], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]],
                   cell=atoms.cell, pbc=True)
    atoms.positions[1, 2] += ti_shift
    return atoms


def _tetragonal_batio3() -> Atoms:
    """P4mm BaTiO3 (a = 3.992, c = 4.036 A; Ti and O displaced along c)."""
    return _from_spacegroup(
        "P4mm",
        Lattice.tetragonal(3.992, 4.036),
        ["Ba", "Ti", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.515], [0.5, 0.5, -0.024], [0.5, 0.0, 0.486]],
    )


#: Builders of the textbook crystals by name.
TEXTBOOK_CRYSTALS: dict[str, Callable[[], Atoms]] = {
    "Si": lambda: bulk("Si", "diamond", a=5.431),
    "MgO": lambda: bulk("MgO", "rocksalt", a=4.212),
    "NaCl": lambda: bulk("NaCl", "rocksalt", a=5.640),
    "Al": lambda: bulk("Al", "fcc", a=4.050),
    "GaAs": lambda: bulk("GaAs", "zincblende", a=5.653),
    "ZnO": lambda: _from_spacegroup(
        "P6_3mc", Lattice.hexagonal(3.2498, 5.2066), ["Zn", "O"], [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]]
    ),
    "GaN": lambda: _from_spacegroup(
        "P6_3mc", Lattice.hexagonal(3.189, 5.185), ["Ga", "N"], [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.377]]
    ),
    "rutile": lambda: _from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]]
    ),
    "quartz": lambda: _from_spacegroup(
        "P3_221", Lattice.hexagonal(4.9160, 5.4054), ["Si", "O"], [[0.4697, 0.0, 2 / 3], [0.4135, 0.2669, 0.7858]]
    ),
    "BaTiO3": _tetragonal_batio3,
    "CsCl": lambda: bulk("CsCl", "cesiumchloride", a=4.123),
    "CaF2": lambda: bulk("CaF2", "fluorite", a=5.463),
}
#: Stiff centrosymmetric crystals for the rattle checks.
CENTROSYMMETRIC: tuple[str, ...] = ("MgO", "NaCl", "Si", "CsCl", "CaF2", "Al")


def build_textbook(name: str) -> Atoms:
    """Build a fresh copy of the textbook crystal ``name`` (a key of :data:`TEXTBOOK_CRYSTALS`)."""
    try:
        return TEXTBOOK_CRYSTALS[name]()
    except KeyError:
        raise ValueError(f"unknown textbook crystal {name!r}; known: {sorted(TEXTBOOK_CRYSTALS)}") from None
