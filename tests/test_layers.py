"""The package's layers import one way (README, "Architecture"): every import of every module is checked.

Imports are read from the source with ``ast`` (module level, inside functions and under
``TYPE_CHECKING`` alike), so a lazy import cannot hide a dependency that points up.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gmt_ase"

_LOWER = {"core", "graph", "nn", "invariant", "inference"}
#: Layer -> the gmt_ase layers its modules may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "graph": {"core", "graph"},
    "nn": {"core", "nn"},
    "invariant": {"core", "graph", "invariant"},
    "inference": {"_version", *_LOWER},
    "results": {"core"},
    "predict": {"core", "graph", "invariant", "inference", "results"},
    "calculator": {"core", "inference", "predict", "results"},
    "testing": {"core", "graph", "nn", "inference"},
    "training": {*_LOWER, "predict", "results", "training"},
    "evaluation": {*_LOWER, "predict", "results", "training", "evaluation", "testing"},
    "cli": {*_LOWER, "_version", "predict", "results", "calculator", "training", "evaluation", "cli", "distributed"},
    "workflows": {"", "core", "results", "calculator", "predict"},  # "" is ``from gmt_ase import ...``
    "storage": {"core", "results"},
    "distributed": {"core", "inference", "predict", "results", "distributed"},
    "_version": set(),
    "models": set(),  # package data (checkpoints and cards)
    "__init__": {"_version", "calculator", "predict", "results", "storage", "distributed"},
}
#: Third-party packages a layer may import at module level (lazy imports inside functions are listed below).
THIRD_PARTY: dict[str, set[str]] = {
    "core": {"numpy", "spglib"},
    "nn": {"numpy", "torch", "e3nn"},
}
#: Documented lazy exceptions: pymatgen's elastic formulas and scipy's optimiser in core.derived, and the
#: torch branch of core.symmetry.reynolds_projection (taken only for a torch tensor argument).
LAZY_THIRD_PARTY: dict[str, set[str]] = {"core": {"pymatgen", "scipy", "torch"}, "nn": set()}


def _layer(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "workflows":
        return "workflows"
    return parts[1] if len(parts) > 2 else path.stem


def _modules() -> list[Path]:
    return sorted([*PACKAGE.rglob("*.py"), *(ROOT / "workflows").glob("*.py")])


def _imports(source: str) -> list[tuple[str, bool]]:
    """Every absolute import of a module as (dotted name, at module level)."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "gmt_ase":  # from gmt_ase import X: X is a module or a public name
                found += [(f"gmt_ase.{alias.name}", id(node) in top) for alias in node.names]
            else:
                found.append((node.module, id(node) in top))
    return found


def _target_layer(name: str) -> str | None:
    """The gmt_ase layer an import reaches, or None for a third-party one."""
    parts = name.split(".")
    if parts[0] != "gmt_ase":
        return None
    if len(parts) == 1:
        return ""
    if parts[1] == "workflows":
        return "workflows"
    if parts[1] in {
        "GMTCalculator",
        "predict_tensors",
        "TensorPrediction",
        "PredictionFailure",
        "__version__",
        "store_results",
        "load_results",
    }:
        return ""
    return parts[1]


def layer_violations(path: Path, source: str) -> list[str]:
    """Imports of ``path`` that point up or sideways, or reach a forbidden third-party package."""
    layer = _layer(path)
    allowed = ALLOWED[layer]
    bad = []
    for name, module_level in _imports(source):
        target = _target_layer(name)
        if target is not None:
            if target not in allowed:
                bad.append(f"{path.relative_to(ROOT)} imports {name} (layer {layer!r} may import {sorted(allowed)})")
            continue
        top = name.split(".")[0]
        if layer in THIRD_PARTY and top not in sys.stdlib_module_names:
            permitted = THIRD_PARTY[layer] | (set() if module_level else LAZY_THIRD_PARTY[layer])
            if top not in permitted:
                bad.append(f"{path.relative_to(ROOT)} imports {name} (layer {layer!r} may import {sorted(permitted)})")
    return bad


def test_every_module_belongs_to_a_known_layer() -> None:
    unknown = sorted({_layer(path) for path in _modules()} - set(ALLOWED))
    assert unknown == [], f"modules outside the documented layers: {unknown} (add them to README and ALLOWED)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    assert layer_violations(path, path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("gmt_ase/core/tensors.py", "from gmt_ase.graph.neighbors import neighbor_list\n"),
        ("gmt_ase/core/symmetry.py", "import torch\n"),
        ("gmt_ase/nn/model.py", "def f():\n    from gmt_ase.graph.crystal_graph import collate\n"),
        ("gmt_ase/nn/layers.py", "import ase\n"),
        ("gmt_ase/inference/predictor.py", "from gmt_ase.predict import predict_one\n"),
        ("gmt_ase/predict.py", "if True:\n    from gmt_ase.calculator import GMTCalculator\n"),
        ("gmt_ase/training/train.py", "from gmt_ase.evaluation.metrics import tensor_errors\n"),
        ("gmt_ase/evaluation/evaluate.py", "from gmt_ase.calculator import GMTCalculator\n"),
        ("workflows/jobs.py", "from gmt_ase.inference.cache import load_predictor\n"),
    ],
)
def test_an_upward_import_is_caught(where: str, source: str) -> None:
    assert layer_violations(ROOT / where, source), f"{source!r} in {where} was not caught"
