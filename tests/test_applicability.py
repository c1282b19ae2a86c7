"""Applicability warnings and disordered structures: every case of issue 10 is flagged, plain bulk is not."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from conftest import build_nacl, build_silicon, build_wurtzite_zno  # plain builders (tests/ is on sys.path)
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.graph.validation import DisorderedStructureError, InvalidStructureError, check_ordered, validate_structure
from gmt_ase.invariant import applicability as ap
from gmt_ase.training.applicability_stats import compute_stats
from gmt_ase.training.data import TensorRecord

BST_CIF = """data_BaSrTiO3
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   3.95
_cell_length_b   3.95
_cell_length_c   3.95
_cell_angle_alpha   90
_cell_angle_beta   90
_cell_angle_gamma   90
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_label
 _atom_site_type_symbol
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Ba1  Ba  0.0  0.0  0.0  0.5
  Sr1  Sr  0.0  0.0  0.0  0.5
  Ti1  Ti  0.5  0.5  0.5  1.0
  O1  O  0.5  0.5  0.0  1.0
  O2  O  0.5  0.0  0.5  1.0
  O3  O  0.0  0.5  0.5  1.0
"""


def structure_warnings(atoms: Atoms) -> list[str]:
    return ap.structure_warnings(atoms.numbers, atoms.positions, atoms.cell[:])


def batio3() -> Atoms:
    structure = Structure.from_spacegroup(
        "P4mm", Lattice.tetragonal(3.99, 4.04), ["Ba", "Ti", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.515], [0.5, 0.5, -0.025], [0.5, 0, 0.485]],
    )
    return AseAtomsAdaptor.get_atoms(structure)


def nacl_slab() -> Atoms:
    slab = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat((1, 1, 3))
    slab.center(vacuum=50.0, axis=2)  # ~100 A of vacuum between periodic images
    return slab


def squeezed_silicon() -> Atoms:
    atoms = build_silicon()
    atoms.set_cell(atoms.cell[:] * 0.5 ** (1 / 3), scale_atoms=True)  # half the volume
    return atoms


def water_in_a_box() -> Atoms:
    atoms = molecule("H2O")
    atoms.set_cell(np.eye(3) * 10.0)
    atoms.center()
    atoms.pbc = True
    return atoms


PLAIN_BULK = {
    "NaCl": build_nacl,
    "Si": build_silicon,
    "ZnO": build_wurtzite_zno,
    "MgO": lambda: bulk("MgO", "rocksalt", a=4.21),
    "BaTiO3": batio3,
}
FLAGGED = {  # issue 10's first paragraph, plus a molecule in a box
    "Cu": (lambda: bulk("Cu", "fcc", a=3.61), "likely metallic"),
    "Pt": (lambda: bulk("Pt", "fcc", a=3.92), "likely metallic"),
    "Al": (lambda: bulk("Al", "fcc", a=4.05), "likely metallic"),
    "NaCl slab": (nacl_slab, "vacuum"),
    "Si at half volume": (squeezed_silicon, "compressed: Si-Si"),
    "H2O in a box": (water_in_a_box, "very low density"),
}


@pytest.mark.parametrize("name", PLAIN_BULK)
def test_plain_bulk_crystals_get_no_warning(name):
    assert structure_warnings(PLAIN_BULK[name]()) == []


@pytest.mark.parametrize("name", FLAGGED)
def test_each_case_of_the_issue_is_flagged(name):
    build, expected = FLAGGED[name]
    warnings = structure_warnings(build())
    assert any(expected in w for w in warnings), warnings


def test_metallic_heuristic():
    assert ap.is_likely_metallic(["Cu"]) and ap.is_likely_metallic(["Ni", "Al"])
    assert not ap.is_likely_metallic(["Na", "Cl"]) and not ap.is_likely_metallic(["Si"])
    assert not ap.is_likely_metallic(["Ga", "As"])


def test_largest_gap_sees_the_vacuum_in_any_direction():
    slab = nacl_slab()
    assert ap.largest_gap(slab.positions, slab.cell[:]) == pytest.approx(100.0, abs=0.1)
    nacl = build_nacl()
    assert ap.largest_gap(nacl.positions, nacl.cell[:]) < 3.0
    # a skewed cell: the gap is measured along the plane normal, not along the lattice vector
    tilted = slab.copy()
    tilted.set_cell(tilted.cell[:] + np.array([[0, 0, 0], [0, 0, 0], [3.0, 0, 0]]), scale_atoms=False)
    assert ap.largest_gap(tilted.positions, tilted.cell[:]) == pytest.approx(100.0, abs=0.5)


STATS = {
    "element_counts": {"dielectric": {"Na": 50, "Cl": 3}, "piezoelectric": {"Na": 9, "Cl": 9},
                       "elastic": {"Na": 99, "Cl": 99}},
    "ranges": {"k_vrh": [1.0, 400.0], "eps_electronic_mean": [1.7, 100.0], "piezo_max_abs": [0.001, 30.0]},
    "structure": {"volume_per_atom": [4.0, 100.0], "largest_gap": [0.4, 20.0], "largest_gap_p999": 12.0},
    "pair_min_distance": {"Cl-Na": 2.7},
}


def test_rare_elements_are_named_with_their_counts():
    (warning,) = ap.rare_element_warnings(["Na", "Cl"], STATS)
    assert "Cl (dielectric 3)" in warning and "Na" not in warning
    assert ap.rare_element_warnings(["Na"], STATS) == []
    assert "K (dielectric 0, piezoelectric 0, elastic 0)" in ap.rare_element_warnings(["K"], STATS)[0]


def test_outputs_beyond_the_training_range_are_flagged():
    assert ap.output_range_warnings({"k_vrh": 300.0, "eps_electronic_mean": 5.0}, STATS) == []
    (high,) = ap.output_range_warnings({"k_vrh": 166000.0}, STATS)
    assert "K_VRH 1.66e+05 GPa" in high
    assert "K_VRH" in ap.output_range_warnings({"k_vrh": -5.0}, STATS)[0]  # below the minimum too
    assert "mean eps_inf" in ap.output_range_warnings({"eps_electronic_mean": 113.0 * 1.2}, STATS)[0]
    assert ap.output_range_warnings({"piezo_max_abs": 0.0}, STATS) == []  # zero by symmetry is fine


def test_output_invariants_match_pymatgen():
    from pymatgen.analysis.elasticity.elastic import ElasticTensor

    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    c = a @ a.T * 20 + np.eye(6) * 50
    values = ap.output_invariants(np.eye(3) * 2, np.eye(3), np.zeros((3, 6)), c)
    tensor = ElasticTensor.from_voigt(c)
    assert values["k_vrh"] == pytest.approx(tensor.k_vrh) and values["g_vrh"] == pytest.approx(tensor.g_vrh)
    assert values["eps_electronic_mean"] == 2.0 and values["eps_total_mean"] == 3.0


def test_shipped_training_stats_cover_the_data():
    stats = ap.training_stats()
    assert stats["n_crystals"]["dielectric"] > 800 and stats["n_crystals"]["elastic"] > 3000
    for family in ("dielectric", "piezoelectric", "elastic"):
        assert stats["element_counts"][family]["O"] > 100
    assert 2.0 < stats["pair_min_distance"]["Si-Si"] < 2.4
    assert stats["ranges"]["k_vrh"][1] > 300


def test_compute_stats_on_records():
    nacl = AseAtomsAdaptor.get_structure(build_nacl())
    elastic = voigt_to_full(np.diag([50.0, 50.0, 50.0, 10.0, 10.0, 10.0]))
    records = [
        TensorRecord("mp-1", "dielectric", nacl,
                     {"dielectric_electronic": 2.4 * np.eye(3), "dielectric_ionic": 3.0 * np.eye(3)}),
        TensorRecord("mp-1", "elastic", nacl, {"elastic": elastic}),
        TensorRecord("mp-2", "elastic_binary", nacl, {"k_vrh": np.array(25.0), "g_vrh": np.array(15.0)}),
    ]
    stats = compute_stats(records)
    assert stats["n_crystals"] == {"dielectric": 1, "elastic": 2}
    assert stats["element_counts"]["elastic"] == {"Cl": 2, "Na": 2}
    assert stats["ranges"]["eps_electronic_mean"] == pytest.approx([2.4, 2.4])
    assert stats["ranges"]["k_vrh"][0] == pytest.approx(50.0 / 3, rel=0.02)
    assert stats["pair_min_distance"]["Cl-Na"] == pytest.approx(2.82, abs=0.01)


# ----------------------------------------------------------------------------------- disordered input


@pytest.fixture
def bst_cif(tmp_path):
    path = tmp_path / "Ba0.5Sr0.5TiO3.cif"
    path.write_text(BST_CIF)
    return path


def test_disordered_cif_read_by_ase_is_refused(bst_cif):
    import ase.io

    atoms = ase.io.read(bst_cif)
    assert atoms.get_chemical_formula() == "O3SrTi"  # what ASE silently made of it
    with pytest.raises(DisorderedStructureError, match=r"site 0 .*Ba 0\.5 \+ Sr 0\.5"):
        validate_structure(atoms, range(1, 95))


def test_disordered_pymatgen_structure_is_refused(bst_cif):
    structure = Structure.from_file(bst_cif)
    with pytest.raises(DisorderedStructureError, match=r"site 0 at fractional \(0, 0, 0\).*Ba 0\.5 \+ Sr 0\.5"):
        validate_structure(structure, range(1, 95))
    vacancy = Structure(Lattice.cubic(4.0), [{"Ti": 0.9}, "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(InvalidStructureError, match="site 0 .*Ti 0.9"):
        check_ordered(vacancy)


def test_ordered_structures_pass_the_order_check(bst_cif):
    import ase.io

    ordered = bst_cif.with_name("BaTiO3.cif")
    text = BST_CIF.replace("  Sr1  Sr  0.0  0.0  0.0  0.5\n", "")
    ordered.write_text(text.replace("0.0  0.5\n  Ti1", "0.0  1.0\n  Ti1"))
    check_ordered(ase.io.read(ordered))
    check_ordered(Structure.from_file(ordered))
    check_ordered(build_nacl())
