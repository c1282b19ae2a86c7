"""Batched API: one result per input in order, bad structures fail alone, batch failures fall back."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from pymatgen.io.ase import AseAtomsAdaptor

import gmt_ase
from gmt_ase import GMTCalculator, PredictionFailure, TensorPrediction, predict_tensors
from gmt_ase.inference.predictor import TensorPredictor


@pytest.fixture(scope="module")
def calc(tiny_model) -> GMTCalculator:
    return GMTCalculator(model=tiny_model, device="cpu")


@pytest.fixture
def model_calls(monkeypatch):
    """Record the number of crystals of every TensorPredictor.predict call."""
    calls: list[int] = []
    original = TensorPredictor.predict

    def recording(self, crystals, batch_size=64):
        calls.append(len(crystals))
        return original(self, crystals, batch_size=batch_size)

    monkeypatch.setattr(TensorPredictor, "predict", recording)
    return calls


def og_crystal() -> Atoms:
    return Atoms("Og", cell=np.eye(3) * 3.5, pbc=True)


def test_public_names_and_cheap_import():
    assert {"GMTCalculator", "predict_tensors", "TensorPrediction", "PredictionFailure", "__version__"} <= set(
        gmt_ase.__all__
    )
    assert isinstance(gmt_ase.__version__, str)
    code = "import sys, gmt_ase, gmt_ase.calculator, gmt_ase.cli; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""  # no import-time output


def test_bad_structures_fail_alone(calc, silicon, rutile, wurtzite_zno, model_calls):
    water = molecule("H2O")
    structures = [silicon, og_crystal(), water, rutile, Atoms(), "not a structure", wurtzite_zno]
    results = calc.predict(structures, batch_size=64)
    assert [r.index for r in results] == list(range(7))
    assert [r.ok for r in results] == [True, False, False, True, False, False, True]
    assert [r.error_type for r in results if not r.ok] == [
        "UnsupportedElementError", "NonPeriodicError", "EmptyStructureError", "TypeError"]
    assert "element Og (Z=118)" in results[1].message
    assert model_calls == [3]  # the three good ones in one batch
    assert isinstance(results[0], TensorPrediction) and isinstance(results[1], PredictionFailure)


def _assert_close_in_norm(actual, expected, rtol=1e-5):
    """float32 batches reduce in a different order than single crystals: compare relative to the tensor's norm."""
    error = np.linalg.norm(np.asarray(actual) - np.asarray(expected))
    assert error <= rtol * np.linalg.norm(expected) + 1e-10, f"error {error:.3g}"


def test_batched_equals_single_calculator_results(calc, rutile, wurtzite_zno, alpha_quartz):
    structures = [rutile, wurtzite_zno, alpha_quartz]
    batched = calc.predict(structures, batch_size=3)
    for atoms, result in zip(structures, batched, strict=True):
        atoms.calc = calc
        _assert_close_in_norm(result.elastic, calc.get_property("elastic_tensor", atoms))
        _assert_close_in_norm(result.piezoelectric, calc.get_property("piezoelectric_tensor", atoms))
        _assert_close_in_norm(result.dielectric_electronic, calc.get_property("dielectric_tensor", atoms))
        assert result.symmetry["space_group_symbol"] == calc.results["space_group"]


def test_generator_input_is_chunked(calc, silicon, rutile, nacl, model_calls):
    def generate():
        yield from (silicon, rutile, nacl, og_crystal(), silicon)

    results = calc.predict(generate(), batch_size=2)
    assert [r.ok for r in results] == [True, True, True, False, True]
    assert model_calls == [2, 1, 1]  # chunks (Si, rutile), (NaCl, Og), (Si)
    _assert_close_in_norm(results[0].elastic, results[4].elastic)  # float32


def test_batch_failure_falls_back_to_one_by_one(calc, silicon, rutile, nacl, monkeypatch):
    original = TensorPredictor.predict
    calls: list[int] = []

    def flaky(self, crystals, batch_size=64):
        calls.append(len(crystals))
        if len(crystals) > 1:
            raise RuntimeError("CUDA out of memory (simulated)")
        if 11 in crystals[0].numbers:
            raise RuntimeError("kernel failure on NaCl (simulated)")
        return original(self, crystals, batch_size=batch_size)

    monkeypatch.setattr(TensorPredictor, "predict", flaky)
    results = calc.predict([silicon, nacl, rutile])
    assert calls == [3, 1, 1, 1]
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_type == "RuntimeError" and "NaCl" in results[1].message


def test_non_finite_model_output_is_a_failure(calc, silicon, monkeypatch):
    original = TensorPredictor.predict

    def broken(self, crystals, batch_size=64):
        out = original(self, crystals, batch_size=batch_size)
        out[0]["elastic"] = np.full((3, 3, 3, 3), np.nan)
        return out

    monkeypatch.setattr(TensorPredictor, "predict", broken)
    (result,) = calc.predict([silicon])
    assert not result.ok and result.error_type == "FloatingPointError" and "elastic" in result.message


def test_prediction_record(calc, batio3_p4mm):
    (result,) = predict_tensors([AseAtomsAdaptor.get_structure(batio3_p4mm)], calculator=calc)
    assert result.ok
    assert result.dielectric_electronic.shape == (3, 3) and result.dielectric_total.shape == (3, 3)
    assert result.piezoelectric.shape == (3, 6) and result.elastic.shape == (6, 6)
    np.testing.assert_allclose(result.dielectric_total, result.dielectric_electronic + result.dielectric_ionic)
    assert result.symmetry == {"space_group_symbol": "P4mm", "space_group_number": 99, "point_group": "4mm",
                               "symprec": 0.01, "n_operations": 8}
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["ok"] is True and data["index"] == 0
    assert np.array(data["piezoelectric"]).shape == (3, 6)
    assert data["units"]["elastic"] == "GPa" and data["units"]["piezoelectric"] == "C/m^2"
    assert data["units"]["derived.k_vrh"] == "GPa" and data["units"]["derived.piezo_strain_d"] == "pC/N"
    assert set(data["derived"]) >= {"k_vrh", "g_vrh", "born_stable", "eij_max", "d_max_abs"}
    with pytest.raises(AttributeError):
        result.index = 3  # frozen


def test_failure_record():
    failure = PredictionFailure.from_exception(4, ValueError("bad cell"))
    assert not failure.ok
    assert failure.to_dict() == {"index": 4, "ok": False, "error_type": "ValueError", "error": "bad cell"}


def test_predict_tensors_arguments(tiny_model, calc, silicon, capsys):
    results = predict_tensors([silicon], model=tiny_model, device="cpu", symprec=0.05, progress=True)
    assert results[0].ok and results[0].symmetry["symprec"] == 0.05
    assert capsys.readouterr().out == ""  # the progress bar goes to stderr
    np.testing.assert_allclose(results[0].elastic, predict_tensors([silicon], calculator=calc)[0].elastic)
    with pytest.raises(ValueError, match="either calculator"):
        predict_tensors([silicon], calculator=calc, model=tiny_model)
    with pytest.raises(ValueError, match="batch_size"):
        predict_tensors([silicon], calculator=calc, batch_size=0)
    assert predict_tensors([], calculator=calc) == []
