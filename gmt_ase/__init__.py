"""gmt_ase: symmetry-exact crystal tensors (dielectric, piezoelectric, elastic) for ASE and atomate2.

Public names are imported lazily (PEP 562), so ``import gmt_ase`` stays cheap and does not import torch
until a model is needed::

    from gmt_ase import GMTCalculator, predict_tensors
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gmt_ase._version import __version__

if TYPE_CHECKING:
    from gmt_ase.calculator import GMTCalculator
    from gmt_ase.predict import predict_tensors
    from gmt_ase.results import PredictionFailure, TensorPrediction
    from gmt_ase.storage import load_results, store_results

__all__ = [
    "GMTCalculator",
    "PredictionFailure",
    "TensorPrediction",
    "__version__",
    "load_results",
    "predict_tensors",
    "store_results",
]

_LAZY = {
    "GMTCalculator": "gmt_ase.calculator",
    "predict_tensors": "gmt_ase.predict",
    "TensorPrediction": "gmt_ase.results",
    "PredictionFailure": "gmt_ase.results",
    "store_results": "gmt_ase.storage",
    "load_results": "gmt_ase.storage",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gmt_ase' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
