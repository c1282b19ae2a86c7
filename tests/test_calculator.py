"""The ASE calculator: contract, caching, symmetry, equivariance, supercells, checkpoints, global state."""

from __future__ import annotations

import json
from pathlib import Path

import ase.db
import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.calculator import PropertyNotImplementedError
from pymatgen.analysis.elasticity.elastic import ElasticTensor
from pymatgen.analysis.piezo import PiezoTensor
from pymatgen.core.tensors import Tensor

from gmt_ase import GMTCalculator
from gmt_ase.core.derived import DERIVED_UNITS
from gmt_ase.core.symmetry import analyze_symmetry, reynolds_projection
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.graph.validation import UnsupportedElementError
from gmt_ase.inference.io import CheckpointError
from gmt_ase.inference.predictor import TensorPredictor
from gmt_ase.results import SCALAR_STD_KEYS
from gmt_ase.testing import assert_equivariant, random_orthogonal, stable_seed

PROPERTIES = {
    "dielectric_tensor": (3, 3),
    "dielectric_tensor_ionic": (3, 3),
    "dielectric_tensor_total": (3, 3),
    "piezoelectric_tensor": (3, 6),
    "elastic_tensor": (6, 6),
}
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "gmt_ase" / "models" / "default.pt"


@pytest.fixture(scope="module")
def calc32(tiny_model) -> GMTCalculator:
    return GMTCalculator(model=tiny_model, device="cpu")


@pytest.fixture(scope="module")
def calc64(tiny_model) -> GMTCalculator:
    return GMTCalculator(model=tiny_model, device="cpu", dtype="float64")


@pytest.fixture
def count_calls(monkeypatch):
    """Count TensorPredictor.predict calls (number of calls and of crystals)."""
    counts = {"calls": 0, "crystals": 0}
    original = TensorPredictor.predict

    def counting(self, crystals, batch_size=64):
        counts["calls"] += 1
        counts["crystals"] += len(crystals)
        return original(self, crystals, batch_size=batch_size)

    monkeypatch.setattr(TensorPredictor, "predict", counting)
    return counts


def cartesian_results(calc: GMTCalculator, atoms) -> dict[str, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = calc
    return {
        "eps": calc.get_property("dielectric_tensor", atoms),
        "eps_ion": calc.get_property("dielectric_tensor_ionic", atoms),
        "piezo": voigt_to_full(calc.get_property("piezoelectric_tensor", atoms)),
        "elastic": voigt_to_full(calc.get_property("elastic_tensor", atoms)),
    }


def assert_close(a: np.ndarray, b: np.ndarray, rel: float, atol: float = 1e-12) -> None:
    """Max-norm comparison relative to the larger tensor (exact zeros compare with ``atol``)."""
    scale = max(np.abs(a).max(), np.abs(b).max())
    assert np.abs(a - b).max() <= rel * scale + atol, (np.abs(a - b).max(), scale)


# ------------------------------------------------------------------------------------------ contract


def test_properties_shapes_and_symmetry_info(calc32, rutile):
    rutile.calc = calc32
    assert set(calc32.implemented_properties) == set(PROPERTIES)
    for name, shape in PROPERTIES.items():
        value = rutile.calc.get_property(name, rutile)
        assert value.shape == shape and value.dtype == np.float64
    res = calc32.results
    assert (res["space_group"], res["space_group_number"], res["point_group"]) == ("P4_2/mnm", 136, "4/mmm")
    assert res["symprec"] == 0.01
    np.testing.assert_allclose(
        res["dielectric_tensor_total"], res["dielectric_tensor"] + res["dielectric_tensor_ionic"], atol=1e-12
    )
    with pytest.raises(PropertyNotImplementedError):
        rutile.get_potential_energy()


def test_one_model_call_fills_everything_and_caches(tiny_model, rutile, count_calls):
    calc = GMTCalculator(model=tiny_model, device="cpu")
    rutile.calc = calc
    for name in PROPERTIES:
        calc.get_property(name, rutile)
    calc.get_elastic_tensor(rutile)
    calc.get_piezo_tensor(rutile)
    calc.get_dielectric_tensor(rutile, kind="total")
    calc.get_derived_properties(rutile)
    assert count_calls["calls"] == 1
    rutile.positions[0] += 0.01
    calc.get_property("dielectric_tensor", rutile)
    assert count_calls["calls"] == 2


def test_caller_atoms_are_not_mutated(calc32, wurtzite_zno):
    wurtzite_zno.info["label"] = "ZnO"
    wurtzite_zno.set_initial_magnetic_moments([0.0] * 4)
    before = wurtzite_zno.copy()
    arrays = {k: v.copy() for k, v in wurtzite_zno.arrays.items()}
    wurtzite_zno.calc = calc32
    calc32.get_property("elastic_tensor", wurtzite_zno)
    calc32.get_derived_properties(wurtzite_zno)
    assert wurtzite_zno.info == {"label": "ZnO"}
    assert set(wurtzite_zno.arrays) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(wurtzite_zno.arrays[key], value)
    np.testing.assert_array_equal(wurtzite_zno.cell[:], before.cell[:])


def test_pymatgen_helpers(calc32, wurtzite_zno):
    wurtzite_zno.calc = calc32
    elastic = calc32.get_elastic_tensor(wurtzite_zno)
    piezo = calc32.get_piezo_tensor(wurtzite_zno)
    assert isinstance(elastic, ElasticTensor) and isinstance(piezo, PiezoTensor)
    np.testing.assert_allclose(elastic.voigt, calc32.results["elastic_tensor"], atol=1e-12)
    np.testing.assert_allclose(piezo.voigt, calc32.results["piezoelectric_tensor"], atol=1e-12)
    for kind, name in [("electronic", "dielectric_tensor"), ("ionic", "dielectric_tensor_ionic"),
                       ("total", "dielectric_tensor_total")]:
        eps = calc32.get_dielectric_tensor(wurtzite_zno, kind=kind)
        assert isinstance(eps, Tensor)
        np.testing.assert_allclose(eps, calc32.results[name])
    with pytest.raises(ValueError, match="kind must be one of"):
        calc32.get_dielectric_tensor(wurtzite_zno, kind="static")
    derived = calc32.get_derived_properties(wurtzite_zno)
    assert list(derived) == [*DERIVED_UNITS, *(f"{key}_std" for key in SCALAR_STD_KEYS)]
    assert derived["k_vrh"] == pytest.approx(elastic.k_vrh)
    json.dumps(derived, allow_nan=False)


# ------------------------------------------------------------------------------------------ symmetry


@pytest.mark.parametrize("name", ["rutile", "nacl", "silicon"])
def test_centrosymmetric_piezo_is_exactly_zero(calc32, request, name):
    atoms = request.getfixturevalue(name)
    atoms.calc = calc32
    assert np.abs(calc32.get_property("piezoelectric_tensor", atoms)).max() < 1e-12


@pytest.mark.parametrize("name", ["nacl", "silicon", "nacl_conventional"])
def test_cubic_forms(calc32, request, name):
    atoms = request.getfixturevalue(name)
    atoms.calc = calc32
    eps = calc32.get_property("dielectric_tensor_total", atoms)
    np.testing.assert_allclose(eps, np.eye(3) * eps[0, 0], atol=1e-12 * abs(eps[0, 0]))
    c = calc32.get_property("elastic_tensor", atoms)
    tol = 1e-12 * np.abs(c).max()
    c11, c12, c44 = c[0, 0], c[0, 1], c[3, 3]
    expected = np.zeros((6, 6))
    expected[:3, :3] = c12
    expected[np.arange(3), np.arange(3)] = c11
    expected[np.arange(3, 6), np.arange(3, 6)] = c44
    np.testing.assert_allclose(c, expected, atol=tol)


def test_wurtzite_6mm_piezo_form(calc32, wurtzite_zno):
    wurtzite_zno.calc = calc32
    e = calc32.get_property("piezoelectric_tensor", wurtzite_zno)
    allowed = np.zeros((3, 6), dtype=bool)
    allowed[0, 4] = allowed[1, 3] = allowed[2, 0] = allowed[2, 1] = allowed[2, 2] = True
    assert np.abs(e[~allowed]).max() < 1e-12
    assert e[0, 4] == pytest.approx(e[1, 3], abs=1e-12) and e[2, 0] == pytest.approx(e[2, 1], abs=1e-12)
    assert np.abs(e[allowed]).max() > 0  # an untrained model still gives a generic symmetric tensor


# -------------------------------------------------------------------------------------- equivariance


@pytest.mark.parametrize(
    ("name", "det"), [("alpha_quartz", -1), ("triclinic", 1), ("wurtzite_zno", -1), ("batio3_p4mm", 1)]
)
def test_rotation_and_reflection_equivariance(calc64, request, name, det):
    atoms = request.getfixturevalue(name)
    q = random_orthogonal(stable_seed(name, det), proper=det > 0)  # the same matrix on every run
    assert_equivariant(lambda a: cartesian_results(calc64, a), atoms, [q], rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("reps", [(2, 1, 1), (2, 2, 2)])
def test_supercell_invariance(calc64, rutile, reps):
    ref, out = cartesian_results(calc64, rutile), cartesian_results(calc64, rutile.repeat(reps))
    for key in ref:
        assert_close(out[key], ref[key], rel=1e-5)


def test_atom_order_invariance(calc64, alpha_quartz):
    perm = np.random.default_rng(3).permutation(len(alpha_quartz))
    ref, out = cartesian_results(calc64, alpha_quartz), cartesian_results(calc64, alpha_quartz[perm])
    for key in ref:
        assert_close(out[key], ref[key], rel=1e-8)


def test_float32_agrees_with_float64(calc32, calc64, batio3_p4mm):
    ref, out = cartesian_results(calc64, batio3_p4mm), cartesian_results(calc32, batio3_p4mm)
    for key in ref:
        assert_close(out[key], ref[key], rel=1e-4)


# -------------------------------------------------------------------------------- parameters, errors


def test_parameters_are_json_and_work_with_ase_db_and_trajectories(calc32, rutile, tmp_path):
    calc = GMTCalculator(model=Path(calc32.parameters["model"]), device=torch.device("cpu"),
                         dtype=torch.float32, symprec=0.02)
    params = calc.todict()
    assert json.loads(json.dumps(params)) == params
    assert params["symprec"] == 0.02 and params["device"] == "cpu" and isinstance(params["model"], str)
    rutile.calc = calc
    eps = calc.get_property("dielectric_tensor", rutile)
    for name in ("results.db", "results.json"):  # SQLite keeps only ASE's own columns; JSON keeps all
        with ase.db.connect(tmp_path / name) as db:
            db.write(rutile, label="rutile", data={"elastic_tensor": calc.results["elastic_tensor"]})
        row = ase.db.connect(tmp_path / name).get(label="rutile")
        assert row.calculator == "gmtcalculator" and row.calculator_parameters["symprec"] == 0.02
        np.testing.assert_allclose(row.data["elastic_tensor"], calc.results["elastic_tensor"])
    np.testing.assert_allclose(row.dielectric_tensor, eps)
    ase.io.write(tmp_path / "rutile.traj", rutile)
    back = ase.io.read(tmp_path / "rutile.traj")
    np.testing.assert_allclose(back.calc.get_property("dielectric_tensor", back), eps)


def test_global_torch_state_is_untouched(tiny_model, rutile):
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    calc = GMTCalculator(model=tiny_model, device="cpu", dtype="float64")
    rutile.calc = calc
    calc.get_property("elastic_tensor", rutile)
    assert torch.get_default_dtype() == dtype and torch.get_num_threads() == threads


def test_predictor_cache_is_shared(tiny_model, calc32, calc64):
    again = GMTCalculator(model=tiny_model, device="cpu")
    assert again.predictor is calc32.predictor
    assert calc64.predictor is not calc32.predictor
    assert again.model_info == {k: again.predictor.card[k] for k in ("name", "version", "sha256",
                                                                     "gmt_ase_version")}
    assert again.model_info["name"] == "test-tiny"


def test_bad_parameters(tiny_model, calc32):
    with pytest.raises(ValueError, match="dtype must be one of"):
        GMTCalculator(model=tiny_model, dtype="float16")
    with pytest.raises(ValueError, match="symprec must be positive"):
        GMTCalculator(model=tiny_model, symprec=0)
    with pytest.raises(ValueError, match="cannot change"):
        calc32.set(dtype="float64")


def test_changing_symprec_discards_results(tiny_model, batio3_p4mm):
    calc = GMTCalculator(model=tiny_model, device="cpu")
    batio3_p4mm.calc = calc
    calc.get_property("piezoelectric_tensor", batio3_p4mm)
    assert calc.results["space_group"] == "P4mm"
    calc.set(symprec=0.5)  # loose enough to see the cubic parent structure
    assert calc.results == {}
    piezo = calc.get_property("piezoelectric_tensor", batio3_p4mm)
    assert calc.results["symprec"] == 0.5 and calc.results["space_group"] == "Pm-3m"
    assert np.abs(piezo).max() < 1e-12
    assert calc.todict()["symprec"] == 0.5


def test_unsupported_element_through_the_calculator(calc32):
    atoms = ase.Atoms("Og", cell=np.eye(3) * 3.0, pbc=True)
    atoms.calc = calc32
    with pytest.raises(UnsupportedElementError, match=r"element Og \(Z=118\) is not supported by model 'test-tiny'"):
        calc32.get_property("dielectric_tensor", atoms)


def test_corrupt_truncated_and_foreign_checkpoints(tiny_model, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    truncated = tmp_path / "truncated.pt"
    data = Path(tiny_model).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    for path in (garbage, truncated, foreign):
        with pytest.raises(CheckpointError, match=str(path)):
            GMTCalculator(model=path, device="cpu")
    with pytest.raises(CheckpointError, match="not found"):
        GMTCalculator(model=tmp_path / "missing.pt", device="cpu")
    with pytest.raises(CheckpointError, match="no shipped model named 'nonexistent'"):
        GMTCalculator(model="nonexistent", device="cpu")


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="shipped default model not present")
def test_default_model_on_zno(wurtzite_zno, silicon):
    calc = GMTCalculator(device="cpu")
    assert calc.model_info["name"] and calc.model_info["sha256"]
    wurtzite_zno.calc = calc
    derived = calc.get_derived_properties(wurtzite_zno)
    assert derived["born_stable"] is True
    assert 20 < derived["k_vrh"] < 400 and 1.2 < derived["refractive_index"] < 4
    silicon.calc = calc
    assert np.abs(calc.get_property("piezoelectric_tensor", silicon)).max() < 1e-12
    assert 20 < calc.get_derived_properties(silicon)["k_vrh"] < 300


def test_voigt_results_are_pymatgen_voigt_of_point_group_symmetric_tensors(calc32, alpha_quartz):
    # Independent of gmt_ase's own conversions: pymatgen reads the Voigt arrays back into full tensors, and
    # those must obey quartz's point group 32 (a wrong Voigt column order breaks e_11 = -e_12, C_14 = -C_24).
    alpha_quartz.calc = calc32
    ops = analyze_symmetry(alpha_quartz).operations
    for name, from_voigt in (("piezoelectric_tensor", PiezoTensor), ("elastic_tensor", ElasticTensor)):
        voigt = calc32.get_property(name, alpha_quartz)
        full = np.asarray(from_voigt.from_voigt(voigt))
        np.testing.assert_allclose(voigt_to_full(voigt), full, rtol=1e-12, atol=1e-14)
        assert np.linalg.norm(full) > 1e-6  # quartz is piezoelectric: not trivially symmetric
        np.testing.assert_allclose(reynolds_projection(full, ops), full, atol=1e-6 * np.abs(full).max())


def test_cuda_on_a_machine_without_it_is_a_clear_error(tiny_model, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' is not available: .*device='cpu'"):
        GMTCalculator(model=tiny_model, device="cuda")


def test_explicit_paths_and_shipped_names(tiny_model, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copy(tiny_model, tmp_path / "fast")  # a checkpoint file named like the shipped model
    assert GMTCalculator(model=Path("fast")).model_info["name"] == "test-tiny"  # a Path is a file
    assert GMTCalculator(model="./fast").parameters["model"] == "./fast"
    assert GMTCalculator(model=Path("fast")).parameters["model"] == "./fast"


@pytest.mark.skipif(not (Path(__file__).parents[1] / "gmt_ase" / "models" / "fast.pt").exists(),
                    reason="shipped fast model not present")
def test_a_file_named_fast_does_not_shadow_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").write_text("not a checkpoint")
    assert GMTCalculator(model="fast", device="cpu").model_info["name"] == "fast"
