"""Shared crystal-structure fixtures for the gmt_ase test suite.

Only structure builders live here. Every fixture returns a fresh ``ase.Atoms`` (periodic, in the
orientation that pymatgen's or ASE's builder produces), so a test may modify it freely.

Use ``request.getfixturevalue(name)`` to parametrize a test over several of these structures.
"""

from __future__ import annotations

import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor


def _from_spacegroup(group: str, lattice: Lattice, species: list[str], coords: list[list[float]]) -> Atoms:
    structure = Structure.from_spacegroup(group, lattice, species, coords)
    return AseAtomsAdaptor.get_atoms(structure)


def build_rutile() -> Atoms:
    """Rutile TiO2, P4_2/mnm (136), point group 4/mmm, 6 atoms (a = 4.594, c = 2.959 A, u = 0.3048)."""
    return _from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3048, 0.3048, 0]])


def build_wurtzite_zno() -> Atoms:
    """Wurtzite ZnO, P6_3mc (186), point group 6mm, 4 atoms (a = 3.25, c = 5.207 A, u = 0.382)."""
    return _from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.2498, 5.2066),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]],
    )


def build_alpha_quartz() -> Atoms:
    """Alpha quartz SiO2, P3_221 (154), point group 32, 9 atoms (Levien et al. 1980)."""
    return _from_spacegroup(
        "P3_221",
        Lattice.hexagonal(4.9160, 5.4054),
        ["Si", "O"],
        [[0.4697, 0.0, 2 / 3], [0.4135, 0.2669, 0.1191 + 2 / 3]],
    )


def build_baddeleyite_zro2() -> Atoms:
    """Monoclinic ZrO2 (baddeleyite), P2_1/c (14), point group 2/m, 12 atoms (unique axis b)."""
    return _from_spacegroup(
        "P2_1/c",
        Lattice.monoclinic(5.1505, 5.2116, 5.3173, 99.23),
        ["Zr", "O", "O"],
        [[0.2754, 0.0395, 0.2083], [0.0700, 0.3317, 0.3447], [0.4496, 0.7569, 0.4792]],
    )


def build_triclinic() -> Atoms:
    """A generated triclinic P-1 (2) crystal with a generic cell, point group -1, 6 atoms."""
    return _from_spacegroup(
        "P-1",
        Lattice.from_parameters(5.1, 6.2, 7.3, 81.0, 97.0, 103.0),
        ["Ca", "Si", "O"],
        [[0.12, 0.23, 0.31], [0.41, 0.17, 0.74], [0.33, 0.62, 0.08]],
    )


def build_nacl() -> Atoms:
    """Rock-salt NaCl, Fm-3m (225), point group m-3m, primitive fcc cell with 2 atoms (a = 5.64 A)."""
    return bulk("NaCl", "rocksalt", a=5.64)


def build_nacl_conventional() -> Atoms:
    """Rock-salt NaCl in its conventional cubic cell, 8 atoms, same Cartesian frame as the primitive."""
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


def build_silicon() -> Atoms:
    """Diamond Si, Fd-3m (227), point group m-3m, primitive fcc cell with 2 atoms (a = 5.431 A)."""
    return bulk("Si", "diamond", a=5.431)


def build_batio3_p4mm() -> Atoms:
    """Tetragonal ferroelectric BaTiO3, P4mm (99), point group 4mm, 5 atoms (room temperature).

    Lattice a = 3.9945, c = 4.0335 A; Ti and O displaced along c by 0.07-0.1 A from the cubic
    positions, so a loose ``symprec`` (0.1-0.2 A) can promote it to Pm-3m.
    """
    return _from_spacegroup(
        "P4mm",
        Lattice.tetragonal(3.9945, 4.0335),
        ["Ba", "Ti", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.518], [0.5, 0.5, -0.025], [0.5, 0.0, 0.486]],
    )


@pytest.fixture
def rutile() -> Atoms:
    """Rutile TiO2 (4/mmm)."""
    return build_rutile()


@pytest.fixture
def rutile_supercell() -> Atoms:
    """Rutile TiO2 as a 2x1x1 supercell, 12 atoms (still 16 point-group operations)."""
    return build_rutile().repeat((2, 1, 1))


@pytest.fixture
def wurtzite_zno() -> Atoms:
    """Wurtzite ZnO (6mm)."""
    return build_wurtzite_zno()


@pytest.fixture
def alpha_quartz() -> Atoms:
    """Alpha quartz SiO2 (32)."""
    return build_alpha_quartz()


@pytest.fixture
def monoclinic_zro2() -> Atoms:
    """Baddeleyite ZrO2 (2/m)."""
    return build_baddeleyite_zro2()


@pytest.fixture
def triclinic() -> Atoms:
    """A generated P-1 crystal (-1)."""
    return build_triclinic()


@pytest.fixture
def nacl() -> Atoms:
    """Rock-salt NaCl, primitive cell (m-3m)."""
    return build_nacl()


@pytest.fixture
def nacl_conventional() -> Atoms:
    """Rock-salt NaCl, conventional cubic cell (m-3m)."""
    return build_nacl_conventional()


@pytest.fixture
def silicon() -> Atoms:
    """Diamond Si, primitive cell (m-3m)."""
    return build_silicon()


@pytest.fixture
def batio3_p4mm() -> Atoms:
    """Tetragonal BaTiO3 (4mm)."""
    return build_batio3_p4mm()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Path of a tiny, seeded, untrained checkpoint shared by the tests (fast to load)."""
    from gmt_ase.testing import tiny_checkpoint

    path = tmp_path_factory.getbasetemp() / "gmt_ase_tiny.pt"
    if not path.exists():
        tiny_checkpoint(path, seed=0)
    return str(path)
