"""The element descriptor table (:mod:`gmt_ase.training.element_features`) fed to the species embedding."""

from __future__ import annotations

import numpy as np
import pytest

from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, element_feature_table

NUM_SPECIES = 95


@pytest.fixture(scope="module")
def table() -> np.ndarray:
    return element_feature_table(NUM_SPECIES)


def column(table: np.ndarray, name: str) -> np.ndarray:
    return table[:, ELEMENT_FEATURE_NAMES.index(name)]


def test_shape_finite_and_standardised(table: np.ndarray) -> None:
    assert table.shape == (NUM_SPECIES, len(ELEMENT_FEATURE_NAMES))
    assert np.isfinite(table).all()
    assert np.all(table[0] == 0.0)  # atomic number 0 is padding, not an element
    elements = table[1:]
    np.testing.assert_allclose(elements.mean(axis=0), 0.0, atol=1e-12)
    # std is 1 over the elements that have a value (missing ones sit at the mean, lowering it a little)
    assert np.all(elements.std(axis=0) > 0.5) and np.all(elements.std(axis=0) <= 1.0 + 1e-12)


def test_chemistry_is_in_the_right_order(table: np.ndarray) -> None:
    h, he, c, o, f, na, si, cs = 1, 2, 6, 8, 9, 11, 14, 55
    chi = column(table, "electronegativity")
    assert chi[f] > chi[o] > chi[c] > chi[si] > chi[na] > chi[cs]
    assert column(table, "electronegativity_missing")[he] > 0 > column(table, "electronegativity_missing")[f]
    assert column(table, "row")[cs] > column(table, "row")[si] > column(table, "row")[h]
    assert column(table, "ionization_energy")[he] > column(table, "ionization_energy")[cs]
    for z, block in [(na, "s"), (si, "p"), (26, "d"), (57, "f")]:
        onehot = {b: column(table, f"block_{b}")[z] for b in "spdf"}
        assert max(onehot, key=onehot.get) == block, z


def test_distinct_rows_for_distinct_elements(table: np.ndarray) -> None:
    rows = {tuple(np.round(row, 9)) for row in table[1:]}
    assert len(rows) == NUM_SPECIES - 1
