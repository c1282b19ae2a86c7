"""jobflow/atomate2 makers that prescreen structures with GMTNet before DFT (``gmt_ase.workflows``).

Public names are imported lazily (PEP 562), so importing this package does not import jobflow, atomate2
or torch until a name is used::

    from gmt_ase.workflows import TensorPredictionMaker, TensorPrescreenMaker

They need the ``workflows`` extra (``pip install "gmt_ase[workflows]"``); without it, using a name raises an
``ImportError`` that says so.

Modules: :mod:`~gmt_ase.workflows.jobs` (prediction maker, EMT stand-in), :mod:`~gmt_ase.workflows.flows`
(prescreen flow), :mod:`~gmt_ase.workflows.schemas` (output documents), :mod:`~gmt_ase.workflows.selection`
(criteria), :mod:`~gmt_ase.workflows.compare` (ML vs DFT), :mod:`~gmt_ase.workflows.phonopy_nac`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import compare_prediction, extract_dft_tensors
    from .flows import TensorPrescreenMaker, vasp_input_sets
    from .jobs import EMTElasticMaker, TensorPredictionMaker
    from .phonopy_nac import nac_params_from_prediction, symmetrized_nac_params
    from .schemas import ComparisonDocument, PrescreenDocument, TensorPredictionDocument
    from .selection import evaluate, select_indices

_LAZY = {
    "TensorPredictionMaker": "jobs",
    "EMTElasticMaker": "jobs",
    "TensorPrescreenMaker": "flows",
    "vasp_input_sets": "flows",
    "TensorPredictionDocument": "schemas",
    "PrescreenDocument": "schemas",
    "ComparisonDocument": "schemas",
    "evaluate": "selection",
    "select_indices": "selection",
    "compare_prediction": "compare",
    "extract_dft_tensors": "compare",
    "nac_params_from_prediction": "phonopy_nac",
    "symmetrized_nac_params": "phonopy_nac",
}

__all__ = [
    "ComparisonDocument",
    "EMTElasticMaker",
    "PrescreenDocument",
    "TensorPredictionDocument",
    "TensorPredictionMaker",
    "TensorPrescreenMaker",
    "compare_prediction",
    "evaluate",
    "extract_dft_tensors",
    "nac_params_from_prediction",
    "select_indices",
    "symmetrized_nac_params",
    "vasp_input_sets",
]


#: What ``pip`` needs to install the dependencies of these workflows (quoted for zsh).
INSTALL_HINT = 'pip install "gmt_ase[workflows]"'


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = import_module(f"gmt_ase.workflows.{_LAZY[name]}")
        except ModuleNotFoundError as error:
            if (error.name or "").startswith("gmt_ase"):
                raise
            raise ImportError(
                f"gmt_ase.workflows.{name} needs {error.name!r}, which is not installed: {INSTALL_HINT}",
                name=error.name,
            ) from error
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gmt_ase.workflows' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
