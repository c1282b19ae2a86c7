"""Regenerate ``shipped_reference.json``: the shipped model's outputs on a few known crystals.

Run after shipping a new default model (``python tests/data/make_shipped_reference.py``); the
regression test ``tests/test_shipped_model.py`` then pins the model to these numbers.
"""

import json
from pathlib import Path

import numpy as np
from ase.io import read

from gmt_ase import GMTCalculator

HERE = Path(__file__).resolve().parent
STRUCTURES = HERE.parents[1] / "examples" / "structures"


def main() -> None:
    calc = GMTCalculator(model="default", device="cpu", dtype="float64")
    reference = {"sha256": calc.model_info["sha256"], "crystals": {}}
    for path in sorted(STRUCTURES.iterdir()):
        atoms = read(path)
        (result,) = calc.predict([atoms])
        reference["crystals"][path.name] = {
            name: np.asarray(getattr(result, name)).round(10).tolist()
            for name in ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")
        }
    (HERE / "shipped_reference.json").write_text(json.dumps(reference, indent=1) + "\n")


if __name__ == "__main__":
    main()
