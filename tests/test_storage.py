"""store_results / load_results: every tensor, one-sigma value, derived scalar and warning survives extxyz,
ASE trajectories, ase.io.jsonio and ase.db (sqlite and JSON backends)."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.db import connect
from ase.io import jsonio

from gmt_ase import GMTCalculator, load_results, store_results
from gmt_ase.calculator import PROPERTY_FIELDS
from gmt_ase.core.derived import DERIVED_UNITS


@pytest.fixture
def predicted(tiny_model, wurtzite_zno):
    """Wurtzite with a calculator whose results include one-sigma values and two warnings.

    The tiny test model has no calibrated spread, so the std arrays and warnings are set on the results
    (after the calculation) to exercise their storage as well.
    """
    atoms = wurtzite_zno
    atoms.calc = GMTCalculator(tiny_model, device="cpu")
    calc = atoms.calc
    calc.get_property("elastic_tensor", atoms)
    for name in PROPERTY_FIELDS:
        calc.results[f"{name}_std"] = np.abs(calc.results[name]) * 0.1 + 0.01
    calc.results["uncertainty"] = {"k_vrh_std": 3.5, "g_vrh_std": None}
    calc.results["warnings"] = ['likely metallic (Zn: "no" nonmetal, element)', "a second\nline | here"]
    return atoms


def _check(loaded: dict, atoms) -> None:
    results = atoms.calc.results
    for name in PROPERTY_FIELDS:
        np.testing.assert_array_equal(loaded[name], results[name])
        np.testing.assert_array_equal(loaded[f"{name}_std"], results[f"{name}_std"])
        assert loaded[name].dtype == np.float64
    for key in DERIVED_UNITS:
        expected = results["derived"][key]
        if isinstance(expected, list):
            np.testing.assert_array_equal(loaded[key], np.asarray(expected))
        else:
            assert loaded[key] == expected, key
    assert loaded["k_vrh_std"] == 3.5 and loaded["g_vrh_std"] is None
    assert loaded["warnings"] == ["likely metallic (Zn: 'no' nonmetal, element)", "a second line | here"]
    assert loaded["n_warnings"] == 2
    assert loaded["space_group_number"] == 186 and loaded["point_group"] == "6mm"
    assert loaded["model"] == atoms.calc.model_info["name"]
    assert loaded["model_sha256"] == atoms.calc.model_info["sha256"]


@pytest.mark.parametrize("suffix", [".extxyz", ".traj"])
def test_round_trip_through_ase_files(predicted, tmp_path: Path, suffix: str) -> None:
    store_results(predicted)
    path = tmp_path / f"out{suffix}"
    ase.io.write(path, predicted)
    _check(load_results(ase.io.read(path)), predicted)


def test_round_trip_through_ase_jsonio(predicted) -> None:
    store_results(predicted)
    _check(load_results(jsonio.decode(jsonio.encode(predicted))), predicted)


@pytest.mark.parametrize("name", ["screen.db", "screen.json"])
def test_round_trip_through_ase_db(predicted, tmp_path: Path, name: str) -> None:
    with connect(tmp_path / name) as db:
        db.write(predicted, data=store_results(predicted), k_vrh=predicted.calc.results["derived"]["k_vrh"])
    db = connect(tmp_path / name)
    row = db.get(id=1)
    _check(load_results(row), predicted)
    _check(load_results(row.toatoms(add_additional_information=True)), predicted)
    assert len(list(db.select("k_vrh>0"))) == 1


def test_without_spread_nothing_is_made_up(tiny_model, rutile, tmp_path: Path) -> None:
    rutile.calc = GMTCalculator(tiny_model, device="cpu")
    stored = store_results(rutile)  # calculates now
    assert "gmt_elastic_tensor_std" not in stored and "gmt_k_vrh_std" not in stored
    path = tmp_path / "rutile.extxyz"
    ase.io.write(path, rutile)
    loaded = load_results(ase.io.read(path))
    assert loaded["elastic_tensor_std"] is None and loaded["k_vrh_std"] is None
    assert loaded["warnings"] == [" ".join(w.splitlines()) for w in rutile.calc.results["warnings"]]
    assert loaded["uncertainty_note"] == rutile.calc.results["uncertainty_note"]


def test_stale_keys_are_replaced(predicted, tiny_model) -> None:
    store_results(predicted)
    predicted.calc = GMTCalculator(tiny_model, device="cpu")  # no spread: the std keys must go
    store_results(predicted)
    assert "gmt_elastic_tensor_std" not in predicted.info
    assert load_results(predicted)["warnings"] == [" ".join(w.splitlines()) for w in predicted.calc.results["warnings"]]


def test_clear_errors(rutile) -> None:
    with pytest.raises(ValueError, match="GMTCalculator attached.*no calculator"):
        store_results(rutile)
    with pytest.raises(ValueError, match="no gmt_ase results stored here"):
        load_results(rutile)
    with pytest.raises(TypeError, match="Atoms, an ase.db row or a dict"):
        load_results(42)
