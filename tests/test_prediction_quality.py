"""Warnings, uncertainties and disorder errors reach every output: batched results, calculator, CLI, documents.

The predictor is replaced by a fake whose per-crystal output follows the contract of
``TensorPredictor.predict`` (tensors, plus an optional ``"uncertainty"`` dict of Cartesian one-sigma values).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from test_applicability import BST_CIF

from gmt_ase import GMTCalculator, predict_tensors
from gmt_ase.cli import main
from gmt_ase.cli._io import csv_columns, flatten_row
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.graph.validation import DisorderedStructureError
from gmt_ase.inference.predictor import TensorPredictor
from gmt_ase.results import NO_UNCERTAINTY_NOTE, SCALAR_STD_KEYS, TENSOR_STD_KEYS

ELASTIC = np.array([[250, 80, 80, 0, 0, 0], [80, 250, 80, 0, 0, 0], [80, 80, 250, 0, 0, 0],
                    [0, 0, 0, 70, 0, 0], [0, 0, 0, 0, 70, 0], [0, 0, 0, 0, 0, 70]], dtype=float)
SIGMA = {
    "dielectric_electronic": np.full((3, 3), 0.3),
    "dielectric_ionic": np.full((3, 3), 0.4),
    "piezoelectric": np.full((3, 3, 3), 0.01),
    "elastic": np.full((3, 3, 3, 3), 5.0),
    "k_vrh": 7.0, "g_vrh": 6.0, "eps_electronic_mean": 0.2, "eps_total_mean": 0.5, "eij_max": 0.02,
}
PROPERTY_STD = {"dielectric_tensor_std": (3, 3), "dielectric_tensor_ionic_std": (3, 3),
                "dielectric_tensor_total_std": (3, 3), "piezoelectric_tensor_std": (3, 6),
                "elastic_tensor_std": (6, 6)}


def fake_output(with_uncertainty: bool) -> dict:
    out = {"dielectric_electronic": 2.5 * np.eye(3), "dielectric_ionic": 3.0 * np.eye(3),
           "piezoelectric": np.zeros((3, 3, 3)), "elastic": voigt_to_full(ELASTIC)}
    if with_uncertainty:
        out["uncertainty"] = {key: np.array(value) for key, value in SIGMA.items()}
    return out


@pytest.fixture(params=[True, False], ids=["with-spread", "no-spread"])
def spread(request, monkeypatch) -> bool:
    def fake_predict(self, crystals, batch_size=64):
        return [fake_output(request.param) for _ in crystals]

    monkeypatch.setattr(TensorPredictor, "predict", fake_predict)
    return request.param


@pytest.fixture(scope="module")
def calc(tiny_model) -> GMTCalculator:
    return GMTCalculator(model=tiny_model, device="cpu")


def test_batched_results_carry_uncertainty_or_say_there_is_none(calc, spread, nacl):
    (result,) = predict_tensors([nacl], calculator=calc)
    assert result.ok and result.warnings == ()
    row = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    if not spread:
        assert result.uncertainty is None and result.uncertainty_note == NO_UNCERTAINTY_NOTE
        assert row["uncertainty"] is None and "unknown, not zero" in row["uncertainty_note"]
        return
    u = result.uncertainty
    assert set(u) == {*TENSOR_STD_KEYS, *(f"{k}_std" for k in SCALAR_STD_KEYS)} and result.uncertainty_note is None
    np.testing.assert_allclose(u["dielectric_electronic_std"], np.full((3, 3), 0.3))
    np.testing.assert_allclose(u["dielectric_total_std"], np.full((3, 3), 0.5))  # sqrt(0.3^2 + 0.4^2)
    assert u["piezoelectric_std"].shape == (3, 6) and u["elastic_std"].shape == (6, 6)
    np.testing.assert_allclose(u["elastic_std"], 5.0)
    assert u["k_vrh_std"] == 7.0 and u["eij_max_std"] == 0.02
    assert row["uncertainty"]["elastic_std"][0][0] == 5.0


def test_calculator_results_and_derived_std(calc, spread, nacl):
    atoms = nacl.copy()
    calc.reset()  # the module-scoped calculator may hold the other fake's results for the same atoms
    atoms.calc = calc
    derived = calc.get_derived_properties(atoms)
    assert calc.results["warnings"] == []
    for name, shape in PROPERTY_STD.items():
        std = calc.results[name]
        assert (std is None) if not spread else (np.shape(std) == shape and np.all(std > 0))
    for key in SCALAR_STD_KEYS:
        assert derived[f"{key}_std"] == (SIGMA[key] if spread else None)  # never a silent zero
    assert (calc.results["uncertainty_note"] is None) == spread


def test_cli_rows_carry_warnings_and_uncertainty(calc, spread, nacl):
    cu = bulk("Cu", "fcc", a=3.61)
    good, metal = (r.to_dict() for r in predict_tensors([nacl, cu], calculator=calc))
    assert metal["warnings"] and "metallic" in metal["warnings"][0] and good["warnings"] == []
    flat_good, flat_metal = flatten_row(good), flatten_row(metal)
    assert set(flat_good) <= set(csv_columns())
    assert flat_good["n_warnings"] == 0 and flat_metal["n_warnings"] == 1 and "metallic" in flat_metal["warnings"]
    assert flat_good["k_vrh_std_GPa"] == (7.0 if spread else None)
    assert flat_good.get("elastic_std_C11_GPa") == (5.0 if spread else None)
    assert flat_good.get("dielectric_total_std_xx") == (pytest.approx(0.5) if spread else None)
    assert (flat_good["uncertainty_note"] is None) == spread


def test_documents_carry_warnings_and_uncertainty(calc, spread, nacl):
    from pymatgen.io.ase import AseAtomsAdaptor

    from gmt_ase.workflows.schemas import ModelProvenance, TensorPredictionDocument

    cu = bulk("Cu", "fcc", a=3.61)
    provenance = ModelProvenance(model="test", symprec=0.01)
    docs = [
        TensorPredictionDocument.from_result(r, AseAtomsAdaptor.get_structure(a), i, provenance,
                                             tensors=("elastic",))
        for i, (a, r) in enumerate(zip([nacl, cu], predict_tensors([nacl, cu], calculator=calc), strict=True))
    ]
    assert docs[0].warnings == [] and "metallic" in docs[1].warnings[0]
    again = TensorPredictionDocument.model_validate_json(docs[0].model_dump_json())
    if spread:
        assert again.uncertainty["k_vrh_std"] == 7.0 and again.uncertainty["elastic_std"][0][0] == 5.0
        assert "dielectric_total_std" not in again.uncertainty  # only the kept tensors' spreads
    else:
        assert again.uncertainty is None and again.uncertainty_note == NO_UNCERTAINTY_NOTE


# ------------------------------------------------------------------------ disordered input, end to end


@pytest.fixture
def bst_cif(tmp_path):
    path = tmp_path / "cifs" / "Ba0.5Sr0.5TiO3.cif"
    path.parent.mkdir()
    path.write_text(BST_CIF)
    return path


def test_disordered_input_is_refused_by_calculator_batch_and_cli(calc, bst_cif, tmp_path, capsys):
    import ase.io
    from pymatgen.core import Structure

    atoms = ase.io.read(bst_cif)
    atoms.calc = calc
    with pytest.raises(DisorderedStructureError, match=r"Ba 0\.5 \+ Sr 0\.5"):
        atoms.calc.get_property("dielectric_tensor", atoms)
    failures = predict_tensors([ase.io.read(bst_cif), Structure.from_file(bst_cif)], calculator=calc)
    for failure in failures:
        assert not failure.ok and failure.error_type == "DisorderedStructureError"
        assert "site 0" in failure.message and "Ba 0.5 + Sr 0.5" in failure.message
    output = tmp_path / "out.jsonl"
    code = main(["predict", str(bst_cif.parent), "--model", calc.parameters["model"], "--device", "cpu", "-q",
                 "-o", str(output)])
    (row,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert code == 1 and row["ok"] is False and row["error_type"] == "DisorderedStructureError"
    assert "Ba 0.5 + Sr 0.5" in row["error"]
