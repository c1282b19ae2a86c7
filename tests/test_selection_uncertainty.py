"""Selection criteria with uncertainties (probability form, *_std keys) and applicability warnings."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gmt_ase.workflows.flows import TensorPrescreenMaker
from gmt_ase.workflows.selection import evaluate, exceedance_probability, select_indices, validate_criteria


def doc(index: int, k: float, k_std: float | None, warnings: tuple[str, ...] = ()) -> SimpleNamespace:
    uncertainty = None if k_std is None else {"k_vrh_std": k_std, "g_vrh_std": 1.0}
    return SimpleNamespace(
        ok=True,
        index=index,
        label=None,
        formula="X",
        structure=None,
        symmetry=None,
        derived={"k_vrh": k, "g_vrh": 50.0},
        uncertainty=uncertainty,
        warnings=list(warnings),
    )


METAL = "likely metallic (Cu: no nonmetal element): ..."


def test_exceedance_probability_of_a_normal():
    assert exceedance_probability(150.0, 10.0, 150.0) == pytest.approx(0.5)
    assert exceedance_probability(130.0, 20.0, 150.0) == pytest.approx(0.158655, abs=1e-5)  # 1 - Phi(1)
    assert exceedance_probability(130.0, 20.0, 150.0, above=False) == pytest.approx(0.841345, abs=1e-5)
    assert exceedance_probability(151.0, 0.0, 150.0) == 1.0
    with pytest.raises(ValueError):
        exceedance_probability(1.0, -1.0, 0.0)


def test_probability_criterion_selects_uncertain_candidates_below_the_threshold():
    docs = [doc(0, 200.0, 10.0), doc(1, 135.0, 20.0), doc(2, 130.0, 20.0), doc(3, 100.0, 5.0)]
    assert select_indices(docs, {"k_vrh": ("P>", 150, 0.2)}) == [0, 1]  # P = 1.0, 0.23, 0.16, 0.0
    assert select_indices(docs, {"k_vrh": (">", 150)}) == [0]
    assert select_indices(docs, {"k_vrh": ("P<", 120, 0.5)}) == [3]
    assert select_indices(docs, {"k_vrh_std": (">=", 20)}) == [1, 2]
    assert select_indices(docs, None, top_k=1, rank_by="k_vrh_std") in ([1], [2])


def test_probability_criterion_without_uncertainty_raises_instead_of_assuming_zero():
    with pytest.raises(ValueError, match="no uncertainty"):
        select_indices([doc(0, 200.0, None)], {"k_vrh": ("P>", 150, 0.2)})


@pytest.mark.parametrize(
    "bad",
    [
        {"k_vrh": ("P>", 150)},
        {"k_vrh": ("P>", 150, 1.5)},
        {"universal_anisotropy": ("P>", 1, 0.5)},
        {"k_vrh": ("P>", "high", 0.5)},
        {"warnings": ("contains", ["metallic"])},
    ],
)
def test_malformed_probability_and_contains_conditions_are_refused(bad):
    with pytest.raises(ValueError):
        validate_criteria(bad)


def test_warned_structures_can_be_excluded_or_routed_to_dft():
    docs = [doc(0, 200.0, 10.0), doc(1, 90.0, 5.0, (METAL,)), doc(2, 300.0, 5.0, (METAL, "vacuum: ..."))]
    assert select_indices(docs, {"n_warnings": ("==", 0)}) == [0]
    assert select_indices(docs, {"not": {"warnings": ("contains", "metallic")}}) == [0]
    route = {"or": [{"k_vrh": ("P>", 150, 0.2)}, {"n_warnings": (">", 0)}]}
    assert select_indices(docs, route) == [0, 1, 2]
    assert select_indices(docs, {"and": [{"k_vrh": ("P>", 150, 0.2)}, {"n_warnings": ("==", 0)}]}) == [0]
    assert evaluate({"warnings": ("contains", "vacuum")}, {"warnings": [METAL, "vacuum: ..."]})


def test_prescreen_maker_accepts_the_new_criteria():
    maker = TensorPrescreenMaker(
        criteria={"and": [{"k_vrh": ("P>", 150, 0.2)}, {"n_warnings": ("==", 0)}]}, rank_by="k_vrh_std"
    )
    assert maker.criteria["and"][0]["k_vrh"][0] == "P>"
    with pytest.raises(ValueError):
        TensorPrescreenMaker(criteria={"k_vrh": ("P>", 150)})


def test_prescreen_example_sends_no_metal_to_dfpt(monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    pytest.importorskip("atomate2")
    example = Path(__file__).parents[1] / "examples" / "prescreen_flow.py"
    monkeypatch.setattr(sys, "argv", [str(example), "--test-model"])
    runpy.run_path(str(example), run_name="__main__")
    dfpt = [line for line in capsys.readouterr().out.splitlines() if "DFPT:" in line]
    assert len(dfpt) == 2
    assert not any(f" {metal} DFPT" in line for line in dfpt for metal in ("Cu", "Al", "Ni", "Au", "Pt"))


def test_probability_criteria_use_the_calibrated_log_normal():
    from gmt_ase.workflows.selection import lognormal_exceedance_probability

    # K = 130 +- 20 GPa is log-normal with log-sigma 20/130: P(K > 150) = Phi(ln(130/150) / (20/130))
    assert lognormal_exceedance_probability(130.0, 20.0, 150.0) == pytest.approx(0.17615, abs=1e-4)
    assert exceedance_probability(130.0, 20.0, 150.0) == pytest.approx(0.15866, abs=1e-4)  # the normal's
    # eps means are log-normal above the vacuum value 1: eps = 5 +- 0.8 has log-sigma 0.8 / 4 = 0.2
    assert lognormal_exceedance_probability(5.0, 0.8, 6.0, offset=1.0) == pytest.approx(0.13229, abs=1e-4)
    assert lognormal_exceedance_probability(5.0, 0.8, 0.9, offset=1.0) == 1.0  # below the offset: certain
    assert lognormal_exceedance_probability(5.0, 0.8, 6.0, 1.0, above=False) == pytest.approx(0.86771, abs=1e-4)
    # no negative moduli: a normal gives P(K < 0) > 0 for 30 +- 20 GPa, the log-normal gives 0
    assert lognormal_exceedance_probability(30.0, 20.0, 0.0, above=False) == 0.0
    record = {"eps_electronic_mean": 5.0, "eps_electronic_mean_std": 0.8}
    assert evaluate({"eps_electronic_mean": ("P>", 6.0, 0.13)}, record)
    assert not evaluate({"eps_electronic_mean": ("P>", 6.0, 0.14)}, record)
