"""The README's examples that make a promise: the prescreen snippet keeps metals out of DFPT, and the
store/load snippet round-trips through extxyz and ase.db."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ase.build import bulk

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(containing: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_the_prescreen_snippet_sends_no_metal_to_dfpt(tiny_model, nacl, rutile, wurtzite_zno):
    pytest.importorskip("atomate2")
    from gmt_ase.workflows import TensorPredictionMaker, select_indices

    crystals = [bulk("Al", "fcc", a=4.05), nacl, rutile, bulk("Cu", "fcc", a=3.61), wurtzite_zno]
    namespace = {"structures": crystals, "ids": [f"m{i}" for i in range(len(crystals))]}
    exec(python_block("polar = TensorPrescreenMaker(").replace('model="default"', f"model={tiny_model!r}"), namespace)
    maker = TensorPredictionMaker(model=tiny_model, device="cpu")
    docs = maker.predict_documents(crystals, list(range(len(crystals))), [None] * len(crystals))
    # the tiny model is untrained: give every crystal DFT-worthy numbers, so that only the warnings decide
    docs = [
        d.model_copy(
            update={
                "derived": {
                    **d.derived,
                    "eps_electronic_mean": 50.0,
                    "eij_max": 5.0,
                    "eps_total_mean": 60.0,
                    "k_vrh": 200.0,
                }
            }
        )
        for d in docs
    ]
    assert ["metallic" in " ".join(d.warnings) for d in docs] == [True, False, False, True, False]
    assert sorted(select_indices(docs, namespace["polar"].criteria)) == [1, 2, 4]  # no Al, no Cu
    assert sorted(select_indices(docs, namespace["stiff"].criteria)) == [0, 1, 2, 3, 4]  # metals may be stiff


def test_the_storage_snippet_runs(tiny_model, rutile, tmp_path, monkeypatch):
    from gmt_ase import GMTCalculator

    monkeypatch.chdir(tmp_path)
    rutile.calc = GMTCalculator(tiny_model, device="cpu")
    code = python_block("store_results(atoms)")
    code = code.replace('"k_vrh>150,n_warnings=0"', '"k_vrh>-1"')  # the untrained model's K is anything
    namespace = {"atoms": rutile}
    exec(code, namespace)
    assert namespace["results"]["elastic_tensor"].shape == (6, 6)
    assert (tmp_path / "screen.extxyz").is_file() and (tmp_path / "screen.db").is_file()
