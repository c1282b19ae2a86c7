"""Input checks: every bad structure gets its own specific, informative error."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.graph import validation as v

SPECIES = frozenset(range(1, 95))


def _check(atoms, **kwargs):
    return v.validate_structure(atoms, SPECIES, model_name="default", **kwargs)


def test_good_structures_pass(silicon, rutile, alpha_quartz):
    for atoms in (silicon, rutile, alpha_quartz):
        assert _check(atoms) is atoms


def test_pymatgen_structure_is_accepted(rutile):
    structure = AseAtomsAdaptor.get_structure(rutile)
    atoms = _check(structure)
    assert isinstance(atoms, Atoms)
    np.testing.assert_allclose(atoms.positions, rutile.positions)


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="expected ase.Atoms or pymatgen Structure, got str"):
        _check("Si.cif")


def test_all_errors_are_value_errors():
    for cls in (v.EmptyStructureError, v.NonFiniteError, v.NonPeriodicError, v.DegenerateCellError,
                v.StructureSizeError, v.UnsupportedElementError, v.AtomsTooCloseError):
        assert issubclass(cls, v.InvalidStructureError)
        assert issubclass(cls, ValueError)


def test_empty_structure():
    with pytest.raises(v.EmptyStructureError, match="empty"):
        _check(Atoms(cell=np.eye(3) * 4, pbc=True))


def test_non_periodic_molecule():
    water = molecule("H2O")
    water.center(vacuum=5.0)
    with pytest.raises(v.NonPeriodicError, match=r"periodic in all three directions.*False"):
        _check(water)


def test_slab_is_not_periodic_in_three_directions(silicon):
    silicon.pbc = (True, True, False)
    with pytest.raises(v.NonPeriodicError, match=r"\[True, True, False\]"):
        _check(silicon)


def test_zero_cell():
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1, 1, 1]], pbc=True)
    with pytest.raises(v.DegenerateCellError, match="zero-length lattice vector"):
        _check(atoms)


def test_flat_cell():
    atoms = Atoms("Si", cell=[[3, 0, 0], [0, 3, 0], [3, 3, 0]], pbc=True)
    with pytest.raises(v.DegenerateCellError, match="degenerate"):
        _check(atoms)


@pytest.mark.parametrize("where", ["positions", "cell"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_and_inf(silicon, where, value):
    if where == "positions":
        positions = silicon.positions
        positions[1, 2] = value
        silicon.positions = positions
    else:
        cell = silicon.cell[:]
        cell[0, 0] = value
        silicon.cell = cell
    with pytest.raises(v.NonFiniteError, match="NaN or infinite"):
        _check(silicon)


def test_too_many_atoms(silicon):
    with pytest.raises(v.StructureSizeError, match="16 atoms; at most 10"):
        _check(silicon.repeat((2, 2, 2)), max_atoms=10)
    big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((11, 11, 11))  # 5324 atoms
    with pytest.raises(v.StructureSizeError, match="5324 atoms; at most 5000"):
        _check(big)


def test_volume_per_atom_too_large():
    atoms = Atoms("Si", cell=np.eye(3) * 11.0, pbc=True)  # 1331 A^3 per atom
    with pytest.raises(v.StructureSizeError, match="mostly vacuum"):
        _check(atoms)


def test_volume_per_atom_too_small(silicon):
    silicon.set_cell(silicon.cell[:] * 0.3, scale_atoms=True)  # 0.54 A^3 per atom, as if in Bohr/nm mixups
    with pytest.raises(v.StructureSizeError, match="below the physical minimum"):
        _check(silicon)


def test_unsupported_element_is_named():
    atoms = bulk("Cu", "fcc", a=4.0)
    atoms.numbers[:] = 118
    with pytest.raises(v.UnsupportedElementError) as info:
        v.validate_structure(atoms, frozenset(range(1, 90)), model_name="default")
    assert str(info.value) == "element Og (Z=118) is not supported by model 'default' (trained on 89 elements)"


def test_several_unsupported_elements_are_all_named(rutile):
    with pytest.raises(v.UnsupportedElementError, match=r"elements O \(Z=8\), Ti \(Z=22\) are not supported"):
        v.validate_structure(rutile, frozenset({14}), model_name="tiny")


def test_unknown_atomic_number():
    atoms = bulk("Cu", "fcc", a=4.0)
    atoms.numbers[:] = 0
    with pytest.raises(v.UnsupportedElementError, match=r"unknown atomic number\(s\) \[0\]"):
        _check(atoms)


def test_atoms_too_close_names_the_pair(rutile):
    rutile.positions[4] = rutile.positions[1] + [0.1, 0.2, 0.0]
    with pytest.raises(v.AtomsTooCloseError, match=r"atoms 1 \(Ti\) and 4 \(O\) are 0.224 A apart"):
        _check(rutile)


def test_duplicated_atom(silicon):
    silicon.append(silicon[0])
    with pytest.raises(v.AtomsTooCloseError, match=r"atoms 0 \(Si\) and 2 \(Si\) are 0 A apart"):
        _check(silicon)


def test_close_across_the_periodic_boundary():
    atoms = Atoms("NaCl", cell=np.eye(3) * 5.0, scaled_positions=[[0.01, 0, 0], [0.96, 0, 0]], pbc=True)
    with pytest.raises(v.AtomsTooCloseError, match=r"atoms 0 \(Na\) and 1 \(Cl\) are 0.25 A apart"):
        _check(atoms, min_distance=0.5, volume_per_atom=(0.1, 1e4))


def test_atom_close_to_its_own_image():
    atoms = Atoms("H", cell=[0.4, 10.0, 10.0], pbc=True)
    with pytest.raises(v.AtomsTooCloseError, match="its own periodic image"):
        _check(atoms, volume_per_atom=(0.1, 1e4))


def test_validation_does_not_modify_the_input(rutile):
    before = rutile.copy()
    rutile.info["tag"] = "x"
    _check(rutile)
    assert rutile == before
    assert rutile.info == {"tag": "x"}
