"""ML-vs-DFT comparison: extraction from atomate2/emmet documents, frames, and the numbers (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from gmt_ase.core.tensors import vasp_to_voigt
from gmt_ase.workflows.compare import compare_prediction, extract_dft_tensors, rotate_voigt
from gmt_ase.workflows.schemas import TensorPredictionDocument

C11, C12, C44 = 250.0, 120.0, 90.0
CUBIC = np.array(
    [
        [C11, C12, C12, 0, 0, 0],
        [C12, C11, C12, 0, 0, 0],
        [C12, C12, C11, 0, 0, 0],
        [0, 0, 0, C44, 0, 0],
        [0, 0, 0, 0, C44, 0],
        [0, 0, 0, 0, 0, C44],
    ]
)
# Wurtzite-like 6mm piezo tensor (pymatgen order xx yy zz yz xz xy): e31, e33, e15.
E31, E33, E15 = -0.6, 1.3, -0.5
PIEZO_6MM = np.array([[0, 0, 0, 0, E15, 0], [0, 0, 0, E15, 0, 0], [E31, E31, E33, 0, 0, 0]])
EPS_HEX = np.diag([4.0, 4.0, 5.0])


def cubic_structure() -> Structure:
    return Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def wurtzite() -> Structure:
    return Structure.from_spacegroup(
        "P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]]
    )


def ml_doc(structure: Structure, **tensors) -> TensorPredictionDocument:
    return TensorPredictionDocument(
        index=7,
        label="x",
        ok=True,
        structure=structure,
        formula=structure.composition.reduced_formula,
        **{name: np.asarray(value).tolist() for name, value in tensors.items()},
    )


def elastic_doc(structure: Structure, voigt: np.ndarray, ieee_only: bool = False) -> dict:
    ieee = ElasticTensor.from_voigt(voigt).convert_to_ieee(structure).voigt.tolist()
    return {
        "structure": structure.as_dict(),
        "elastic_tensor": {"raw": None if ieee_only else voigt.tolist(), "ieee_format": ieee},
    }


def dfpt_task_doc(structure: Structure, eps_el, eps_ion, piezo_pmg, where: str = "outcar") -> dict:
    """Minimal emmet TaskDoc-like dict; VASP writes piezo columns as xx yy zz xy yz zx."""
    to_vasp = np.argsort([0, 1, 2, 4, 5, 3])  # inverse of gmt_ase's VASP -> pymatgen permutation
    piezo_vasp = np.asarray(piezo_pmg)[:, to_vasp]
    assert np.allclose(vasp_to_voigt(piezo_vasp), piezo_pmg)
    electronic, ionic = 0.25 * piezo_vasp, 0.75 * piezo_vasp  # clamped-ion + ionic parts
    output = {
        "epsilon_static": np.asarray(eps_el).tolist(),
        "epsilon_ionic": np.asarray(eps_ion).tolist(),
        "structure": structure.as_dict(),
        where: {"piezo_tensor": electronic.tolist(), "piezo_ionic_tensor": ionic.tolist()},
    }
    return {"calcs_reversed": [{"output": output}]}


def test_identical_elastic_gives_zero_error():
    structure = cubic_structure()
    comparison = compare_prediction(ml_doc(structure, elastic=CUBIC), elastic_doc(structure, CUBIC), "elastic")
    assert comparison.ok and comparison.error is None
    (tensor,) = comparison.tensors
    assert tensor.fnorm == pytest.approx(0, abs=1e-9) and tensor.relative_error == pytest.approx(0, abs=1e-12)
    k = (C11 + 2 * C12) / 3
    assert comparison.scalars["k_vrh"] == pytest.approx({"ml": k, "dft": k, "abs_error": 0.0}, abs=1e-9)


def test_known_perturbation():
    structure = cubic_structure()
    delta = 30.0
    # A symmetric perturbation of C11=C22=C33 survives the projection: Fnorm = sqrt(3) delta.
    dft = CUBIC + delta * np.diag([1, 1, 1, 0, 0, 0])
    (tensor,) = compare_prediction(ml_doc(structure, elastic=CUBIC), elastic_doc(structure, dft), "e").tensors
    assert tensor.fnorm == pytest.approx(np.sqrt(3) * delta, rel=1e-9)
    assert tensor.relative_error == pytest.approx(np.sqrt(3) * delta / np.linalg.norm(dft), rel=1e-9)
    # Perturbing C11 alone breaks cubic symmetry; the projection spreads it: Fnorm = delta / sqrt(3).
    dft = CUBIC.copy()
    dft[0, 0] += delta
    comparison = compare_prediction(ml_doc(structure, elastic=CUBIC), elastic_doc(structure, dft), "e")
    assert comparison.tensors[0].fnorm == pytest.approx(delta / np.sqrt(3), rel=1e-9)
    assert comparison.scalars["k_vrh"]["abs_error"] == pytest.approx(delta / 9, rel=1e-6)


def test_dft_frame_is_rotated_back_and_ieee_is_undone():
    structure = wurtzite()
    rotation = Rotation.from_euler("zyx", [35, 20, -50], degrees=True).as_matrix()
    rotated = Structure(Lattice(structure.lattice.matrix @ rotation.T), structure.species, structure.frac_coords)
    c_hex = ElasticTensor.from_voigt(CUBIC).voigt  # any tensor: symmetrised by both sides identically
    c_hex = np.array(c_hex)
    for ieee_only in (False, True):
        output = elastic_doc(rotated, rotate_voigt(c_hex, rotation), ieee_only=ieee_only)
        comparison = compare_prediction(ml_doc(structure, elastic=c_hex), output, "elastic")
        assert comparison.ok, comparison.error
        assert np.allclose(comparison.rotation, rotation, atol=1e-9)
        assert comparison.tensors[0].fnorm == pytest.approx(0, abs=1e-6)


def test_dfpt_task_document_dielectric_and_piezo():
    structure = wurtzite()
    eps_ion = np.diag([2.0, 2.0, 3.0])
    for where in ("outcar", "dielectric_properties"):
        output = dfpt_task_doc(structure, EPS_HEX, eps_ion, PIEZO_6MM, where=where)
        tensors, _ = extract_dft_tensors(output)
        assert np.allclose(tensors["piezoelectric"], PIEZO_6MM)  # electronic + ionic, pymatgen order
        assert np.allclose(tensors["dielectric_total"], EPS_HEX + eps_ion)
    ml = ml_doc(
        structure,
        dielectric_electronic=EPS_HEX,
        dielectric_ionic=eps_ion,
        dielectric_total=EPS_HEX + eps_ion,
        piezoelectric=PIEZO_6MM + 0.1 * np.eye(3, 6),
    )
    comparison = compare_prediction(ml, output, "polar")
    by_name = {t.name: t for t in comparison.tensors}
    assert set(by_name) == {"dielectric_electronic", "dielectric_ionic", "dielectric_total", "piezoelectric"}
    assert by_name["dielectric_total"].fnorm == pytest.approx(0, abs=1e-9)
    # 0.1 on e_11, e_22, e_33 (pymatgen xx, yy, zz columns): only e_33 is allowed in 6mm, so Fnorm = 0.1
    assert by_name["piezoelectric"].fnorm == pytest.approx(0.1, rel=1e-6)
    assert by_name["piezoelectric"].unit == "C/m^2"
    assert comparison.scalars["eps_electronic_mean"]["dft"] == pytest.approx(13 / 3)


def test_problems_are_reported_not_raised():
    structure = cubic_structure()
    ml = ml_doc(structure, elastic=CUBIC)
    missing = compare_prediction(ml, None, "elastic")
    assert not missing.ok and "did not run" in missing.error
    unknown = compare_prediction(ml, {"energy": -3.0}, "elastic")
    assert not unknown.ok and "cannot read tensors" in unknown.error
    empty = compare_prediction(ml, {"calcs_reversed": [{"output": {"energy": 1.0}}]}, "polar")
    assert not empty.ok and "DFPT" in empty.error
    conventional = structure.copy()
    conventional.make_supercell([2, 1, 1])
    other_cell = compare_prediction(ml, elastic_doc(conventional, CUBIC), "elastic")
    assert not other_cell.ok and "cells differ" in other_cell.error
    assert other_cell.scalars["k_vrh"]["abs_error"] == pytest.approx(0, abs=1e-9)  # invariants still compared


def test_relaxed_cell_is_fine():
    structure = cubic_structure()
    relaxed = Structure(Lattice.cubic(4.1), structure.species, structure.frac_coords)
    comparison = compare_prediction(ml_doc(structure, elastic=CUBIC), elastic_doc(relaxed, CUBIC), "elastic")
    assert comparison.ok and np.allclose(comparison.rotation, np.eye(3))
