"""Evaluation pipeline (:mod:`gmt_ase.evaluation.evaluate`) on hand-made records and the tiny test checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import conftest
import numpy as np
import pytest
import torch
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.core.symmetry import analyze_symmetry, reynolds_projection
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.evaluation import evaluate as ev
from gmt_ase.evaluation.metrics import moduli_vrh, tensor_errors
from gmt_ase.inference.predictor import CrystalInput, TensorPredictor
from gmt_ase.training.data import TensorRecord


def record(material_id: str, source: str, atoms: Atoms, targets: dict) -> TensorRecord:
    structure = AseAtomsAdaptor.get_structure(atoms)
    ops = analyze_symmetry(atoms).operations
    symmetric = {
        k: (v if np.ndim(v) == 0 else reynolds_projection(np.asarray(v, float), ops)) for k, v in targets.items()
    }
    return TensorRecord(material_id, source, structure, symmetric)


def cubic_stiffness(c11: float, c12: float, c44: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = c12
    c[np.arange(3), np.arange(3)] = c11
    c[np.arange(3, 6), np.arange(3, 6)] = c44
    return voigt_to_full(c)


@pytest.fixture(scope="module")
def records() -> list[TensorRecord]:
    rng = np.random.default_rng(0)
    piezo = rng.normal(size=(3, 3, 3))
    piezo = piezo + piezo.transpose(0, 2, 1)
    too_close = Atoms("H2", positions=[[0, 0, 0], [0.1, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    return [
        record(
            "mp-rutile",
            "dielectric",
            conftest.build_rutile(),
            {"dielectric_electronic": np.diag([7.0, 7.0, 8.5]), "dielectric_ionic": np.diag([80.0, 80.0, 160.0])},
        ),
        record("mp-zno", "piezoelectric", conftest.build_wurtzite_zno(), {"piezoelectric": piezo}),
        record("mp-quartz", "piezoelectric", conftest.build_alpha_quartz(), {"piezoelectric": piezo}),
        record("mp-nacl", "elastic", conftest.build_nacl(), {"elastic": cubic_stiffness(49.0, 13.0, 13.0)}),
        record("mp-si", "elastic_strainnet", conftest.build_silicon(), {"elastic": cubic_stiffness(153.0, 57.0, 75.0)}),
        record("mp-rutile", "elastic_binary", conftest.build_rutile(), {"k_vrh": 210.0, "g_vrh": 110.0}),
        record("mp-tric", "elastic_binary", conftest.build_triclinic(), {"k_vrh": 80.0, "g_vrh": 40.0}),
        record("mp-bad", "elastic_binary", too_close, {"k_vrh": 1.0, "g_vrh": 1.0}),
    ]


@pytest.fixture(scope="module")
def checkpoint(tiny_model: str) -> Path:
    return Path(tiny_model)


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> TensorPredictor:
    return TensorPredictor.from_checkpoint(checkpoint, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def results(predictor: TensorPredictor, records: list[TensorRecord]) -> dict:
    return ev.evaluate(predictor, records, batch_size=3)


def direct_prediction(predictor: TensorPredictor, rec: TensorRecord) -> dict[str, np.ndarray]:
    atoms = AseAtomsAdaptor.get_atoms(rec.structure)
    crystal = CrystalInput(atoms.numbers, atoms.positions, atoms.cell[:], analyze_symmetry(atoms).operations)
    return predictor.predict([crystal])[0]


def test_crystal_system() -> None:
    expected = {
        1: "triclinic",
        14: "monoclinic",
        62: "orthorhombic",
        136: "tetragonal",
        154: "trigonal",
        186: "hexagonal",
        225: "cubic",
    }
    assert {n: ev.crystal_system(n) for n in expected} == expected
    with pytest.raises(ValueError):
        ev.crystal_system(231)


def test_counts_and_skips(results: dict) -> None:
    metrics = results["metrics"]
    assert metrics["records"] == {"total": 8, "predicted": 7, "skipped": {"AtomsTooCloseError": 1}}
    targets = metrics["targets"]
    for name in ("dielectric_electronic", "dielectric_ionic", "dielectric_total"):
        assert targets[name]["overall"]["count"] == 1
    assert targets["piezoelectric"]["overall"]["count"] == 2
    # centrosymmetric materials without a piezo record: rutile (once for its two records), NaCl, Si, P-1
    assert targets["piezoelectric"]["n_zero_targets"] == 4
    assert targets["piezoelectric"]["with_zeros"]["overall"]["count"] == 6
    assert targets["elastic"]["overall"]["count"] == 2
    assert targets["elastic"]["kg"]["overall"]["count"] == 2
    assert targets["elastic_binary"]["kg"]["overall"]["count"] == 2
    assert set(targets["elastic"]["by_source"]) == {"elastic", "elastic_strainnet"}
    assert set(targets["elastic_binary"]["kg"]["by_crystal_system"]) == {"tetragonal", "triclinic"}
    assert metrics["symmetry_violations"] == dict.fromkeys(ev._MODEL_OUTPUTS, 0)


def test_metrics_match_direct_computation(results: dict, predictor: TensorPredictor, records: list) -> None:
    # evaluate() predicts in batches, direct_prediction one by one: float32 rounding differs by ~1e-6.
    approx = partial(pytest.approx, rel=1e-5)
    targets = results["metrics"]["targets"]
    rutile = direct_prediction(predictor, records[0])
    total_pred = rutile["dielectric_electronic"] + rutile["dielectric_ionic"]
    total_true = records[0].targets["dielectric_electronic"] + records[0].targets["dielectric_ionic"]
    assert targets["dielectric_total"]["overall"] == approx(tensor_errors([total_pred], [total_true]))
    piezo = [direct_prediction(predictor, r)["piezoelectric"] for r in records[1:3]]
    expected = tensor_errors(piezo, [r.targets["piezoelectric"] for r in records[1:3]])
    assert targets["piezoelectric"]["overall"] == approx(expected)
    assert targets["piezoelectric"]["by_crystal_system"]["hexagonal"]["count"] == 1
    binary = [(direct_prediction(predictor, r), r) for r in records[5:7]]
    k_err = np.mean([abs(moduli_vrh(p["elastic"])[0] - r.targets["k_vrh"]) for p, r in binary])
    assert targets["elastic_binary"]["kg"]["overall"]["k_vrh_mae"] == approx(k_err)


def test_with_zeros_counts_exact_zero_predictions_as_correct(results: dict) -> None:
    piezo = results["metrics"]["targets"]["piezoelectric"]
    without, with_zeros = piezo["overall"], piezo["with_zeros"]["overall"]
    assert with_zeros["ewt25"] == pytest.approx((2 * without["ewt25"] + 4) / 6)
    zeros = results["pairs"]["piezoelectric_zeros"]
    assert np.abs(zeros["pred"]).max() < 1e-12 and zeros["true"].shape == (4, 3, 6)


def test_parity_plots(results: dict, tmp_path: Path) -> None:
    written = ev.parity_plots(results, tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert "parity_piezoelectric.png" in names and "parity_elastic_binary_kg.png" in names
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_cli_writes_metrics(
    checkpoint: Path,
    predictor: TensorPredictor,
    records: list,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from gmt_ase.cli import main as cli_main
    from gmt_ase.inference import cache

    seen = {}
    loaded = []

    def fake_load_predictor(model, device=None):  # the fixture's predictor: no second model build
        loaded.append(model)
        return predictor

    def fake_split(args):  # the real loader reads the data files; the CLI plumbing is what is tested here
        seen.update(vars(args))
        return records

    monkeypatch.setattr(ev, "_load_split", fake_split)
    monkeypatch.setattr(cache, "load_predictor", fake_load_predictor)
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(checkpoint), "--out", str(out), "--split", "val", "--seed", "3", "--no-plots"]
    code = cli_main(args)
    assert code == 0 and loaded == [str(checkpoint)]
    assert seen["split"] == "val" and seen["seed"] == 3 and seen["data_dir"] == Path("data")
    metrics = json.loads((out / "metrics.json").read_text())  # strict JSON: no NaN
    assert metrics["data"]["split"] == "val"
    assert metrics["targets"]["piezoelectric"]["overall"]["count"] == 2
    assert not list(out.glob("*.png"))  # --no-plots
    printed = capsys.readouterr().out
    assert "piezoelectric (with zeros)" in printed and "symmetry violations: 0" in printed


def test_cli_reports_bad_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert ev.main(["--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gmt_ase.evaluation.evaluate", "--help"],
        capture_output=True, text=True, check=True, timeout=60,
    )
    assert "--data-dir" in result.stdout and "--split" in result.stdout
