"""Selection criteria of the prescreen: and/or/not, top_k, operators, errors (no model needed)."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Lattice, Structure

from gmt_ase.core.derived import DERIVED_UNITS
from gmt_ase.workflows.schemas import PredictionSymmetry, TensorPredictionDocument
from gmt_ase.workflows.selection import (
    SELECTION_KEYS,
    evaluate,
    select_indices,
    selection_record,
    validate_criteria,
)


def _doc(index: int, ok: bool = True, **derived) -> TensorPredictionDocument:
    structure = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    if not ok:
        return TensorPredictionDocument(index=index, ok=False, error_type="ValueError", error="bad")
    base = {"k_vrh": 100.0, "g_vrh": 50.0, "eps_electronic_mean": 3.0, "eij_max": 0.0, "born_stable": True}
    symmetry = PredictionSymmetry(
        space_group_symbol="Pm-3m", space_group_number=221, point_group="m-3m", symprec=0.01, n_operations=48
    )
    return TensorPredictionDocument(
        index=index,
        ok=True,
        structure=structure,
        formula="NaCl",
        symmetry=symmetry,
        derived={**base, **derived},
    )


DOCS = [
    _doc(0, k_vrh=200.0),
    _doc(1, eps_electronic_mean=12.0),
    _doc(2, k_vrh=160.0, eij_max=1.5),
    _doc(3, ok=False),
    _doc(4, k_vrh=None),
    _doc(5, k_vrh=151.0, born_stable=False),
]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (None, [0, 1, 2, 4, 5]),  # every successful prediction; the failure never
        ({}, [0, 1, 2, 4, 5]),
        ({"k_vrh": (">", 150)}, [0, 2, 5]),  # None never satisfies a comparison
        ({"k_vrh": [">", 150]}, [0, 2, 5]),  # list form, as after a JSON round trip
        ({"k_vrh": (">", 150), "born_stable": ("==", True)}, [0, 2]),  # keys in one dict: and
        ({"and": [{"k_vrh": (">", 150)}, {"eij_max": (">", 1.0)}]}, [2]),
        ({"or": [{"k_vrh": (">=", 200)}, {"eps_electronic_mean": (">", 10)}]}, [0, 1]),
        ({"not": {"k_vrh": ("<=", 150)}}, [0, 2, 4, 5]),  # not(None <= 150) is True
        ({"or": [{"and": [{"k_vrh": (">", 150)}, {"born_stable": ("==", False)}]}, {"eij_max": (">", 1)}]}, [2, 5]),
        ({"index": ("in", [1, 2, 3])}, [1, 2]),
        ({"index": ("not in", [0, 1])}, [2, 4, 5]),
        ({"elements": ("subset", ["Na", "Cl", "K"])}, [0, 1, 2, 4, 5]),
        ({"elements": ("subset", ["Na"])}, []),
        ({"space_group_number": ("==", 221), "g_vrh": ("<", 60)}, [0, 1, 2, 4, 5]),
    ],
)
def test_criteria(criteria, expected):
    assert select_indices(DOCS, criteria) == expected
    assert select_indices(DOCS, json.loads(json.dumps(criteria))) == expected


def test_top_k_ranks_and_drops_none():
    assert select_indices(DOCS, None, top_k=2, rank_by="k_vrh") == [0, 2]
    assert select_indices(DOCS, None, top_k=2, rank_by="k_vrh", descending=False) == [1, 5]
    assert select_indices(DOCS, {"k_vrh": (">", 150)}, top_k=10, rank_by="k_vrh") == [0, 2, 5]
    assert select_indices(DOCS, None, top_k=0, rank_by="k_vrh") == []
    assert select_indices(DOCS, None, rank_by="eps_electronic_mean")[0] == 1  # ranking without a cut


@pytest.mark.parametrize(
    "criteria",
    [
        {"k_vrh": ("~", 150)},  # unknown operator
        {"k_vrh": (">",)},  # not (op, value)
        {"k_vrh": 150},
        {"k_vrh": (150, ">")},
        {"and": {"k_vrh": (">", 1)}},  # and needs a list
        {"or": []},
        {"and": [{"k_vrh": (">", 1)}], "g_vrh": (">", 1)},  # combinator must be alone
        {"index": ("in", 3)},  # collection operator needs a list
        [("k_vrh", ">", 1)],  # not a dict
    ],
)
def test_malformed_criteria_raise(criteria):
    with pytest.raises(ValueError):
        validate_criteria(criteria)
    with pytest.raises(ValueError):
        select_indices(DOCS, criteria)


def test_unknown_key_and_bad_types_raise():
    with pytest.raises(ValueError, match="unknown selection key 'k_vhr'"):
        select_indices(DOCS, {"k_vhr": (">", 100)})
    with pytest.raises(ValueError, match="cannot apply"):
        evaluate({"formula": (">", 3)}, selection_record(DOCS[0]))
    with pytest.raises(ValueError, match="needs rank_by"):
        select_indices(DOCS, None, top_k=3)
    with pytest.raises(ValueError, match="unknown rank_by"):
        select_indices(DOCS, None, top_k=1, rank_by="bulk")


def test_selection_record_keys():
    record = selection_record(DOCS[0])
    assert record["elements"] == ["Cl", "Na"] and record["nsites"] == 2
    assert record["point_group"] == "m-3m" and record["k_vrh"] == 200.0


def test_prescreen_maker_validates_settings_early():
    from gmt_ase.workflows import TensorPrescreenMaker

    with pytest.raises(ValueError, match="unknown operator"):
        TensorPrescreenMaker(criteria={"k_vrh": ("=>", 1)})
    with pytest.raises(ValueError, match="needs rank_by"):
        TensorPrescreenMaker(top_k=5)
    with pytest.raises(ValueError, match="chunk_size"):
        TensorPrescreenMaker(chunk_size=0)
    with pytest.raises(TypeError, match="make"):
        TensorPrescreenMaker(expensive_makers={"x": object()})


def test_prescreen_maker_rejects_unknown_keys_at_construction():
    from gmt_ase.workflows import TensorPrescreenMaker

    with pytest.raises(ValueError, match=r"unknown selection key 'kvrh'; did you mean 'k_vrh'"):
        TensorPrescreenMaker(criteria={"kvrh": (">", 150)})
    with pytest.raises(ValueError, match="unknown selection key 'eps'"):
        TensorPrescreenMaker(criteria={"or": [{"k_vrh": (">", 1)}, {"not": {"eps": (">", 1)}}]})
    with pytest.raises(ValueError, match="unknown rank_by key 'bulk'"):
        TensorPrescreenMaker(top_k=5, rank_by="bulk")
    TensorPrescreenMaker(criteria={"point_group": ("in", ["6mm"]), "d_max_abs": (">", 1)}, top_k=1, rank_by="k_vrh")


def test_every_selection_key_is_in_a_record():
    assert set(selection_record(DOCS[0])) <= set(SELECTION_KEYS)
    assert set(SELECTION_KEYS) - set(selection_record(DOCS[0])) <= set(DERIVED_UNITS)
