"""The metal warning beyond composition: interstitial carbides and nitrides are conductors, insulators are not."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, make_supercell
from conftest import build_nacl  # plain builders (tests/ is on sys.path)

from gmt_ase.invariant import applicability as ap
from gmt_ase.invariant.metallicity import electron_excess, is_likely_metallic, metal_reason, valence

#: Rock-salt conductors named in issue 21, with lattice constants (A).
ROCK_SALT_CONDUCTORS = {"TiN": 4.24, "TiC": 4.33, "ZrN": 4.58, "HfC": 4.64, "NbC": 4.47, "VN": 4.14}
#: Insulators with B, C or N and a transition metal whose valence electrons the anions all take (d0).
D0_INSULATORS = ["ScN", "YN", "LaN", "Zr3N4", "Hf3N4", "Ta3N5", "SrTiN2", "BaHfN2", "CsTaN2", "LiZnN", "BN"]


def _symbols(formula: str) -> list[str]:
    from pymatgen.core import Composition

    return [el.symbol for el, n in Composition(formula).items() for _ in range(int(n))]


@pytest.mark.parametrize("formula", ROCK_SALT_CONDUCTORS)
def test_rock_salt_carbides_and_nitrides_get_the_metal_warning(formula):
    atoms = bulk(formula, "rocksalt", a=ROCK_SALT_CONDUCTORS[formula])
    warnings = ap.structure_warnings(atoms.numbers, atoms.positions, atoms.cell[:])
    assert any("likely metallic" in w and "carbide/nitride" in w for w in warnings), warnings


@pytest.mark.parametrize("formula", D0_INSULATORS)
def test_d0_and_d10_nitrides_are_not_called_metals(formula):
    assert not is_likely_metallic(_symbols(formula)), metal_reason(_symbols(formula))


def test_plain_insulators_and_elemental_metals_keep_their_old_answer():
    nacl = build_nacl()
    assert ap.structure_warnings(nacl.numbers, nacl.positions, nacl.cell[:]) == []
    assert metal_reason(["Cu"]) == "no nonmetal element"
    for formula in ("GaN", "AlN", "SiC", "TiO2", "Si3N4", "B4C"):
        assert not is_likely_metallic(_symbols(formula)), formula


def test_the_electron_count_needs_the_composition_not_just_the_element_set():
    assert electron_excess({"Zr": 3, "N": 4}) == 0.0 and electron_excess({"Zr": 1, "N": 1}) == 1.0
    assert is_likely_metallic({"Zr": 1, "N": 1}) and not is_likely_metallic({"Zr": 3, "N": 4})
    assert [valence(s) for s in ("Na", "Ba", "Ti", "Hf", "W", "Fe", "Zn", "La", "Al")] == [1, 2, 4, 4, 6, 3, 2, 3, 3]


def test_the_warning_is_the_same_for_any_cell_of_the_crystal():
    tin = bulk("TiN", "rocksalt", a=4.24)
    cells = [tin, make_supercell(tin, [[1, 1, 0], [0, 1, 1], [1, 0, 1]]), tin.repeat((2, 1, 3))]
    rattled = cells[1].copy()
    rattled.positions += np.random.default_rng(0).normal(scale=0.01, size=rattled.positions.shape)
    answers = [ap.metallic_warnings(list(a.get_chemical_symbols())) for a in (*cells, rattled)]
    assert all(answer == answers[0] and answer for answer in answers)
