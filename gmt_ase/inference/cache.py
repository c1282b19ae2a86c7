"""The one cache of loaded predictors, and the device and dtype they run on.

Loaded predictors are kept in a module-level cache keyed by (model, device, dtype), so many calculators,
:func:`gmt_ase.predict.predict_tensors` calls, command-line runs or jobs in one worker share one model.
Whether ``model`` is a shipped name or a file is decided by :func:`gmt_ase.inference.io.model_source`.
Nothing here changes global torch state.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gmt_ase.inference.predictor import TensorPredictor

__all__ = ["DTYPES", "clear_predictor_cache", "load_predictor", "resolve_device", "resolve_dtype"]

#: Precisions a predictor can run in (results are always float64).
DTYPES = ("float32", "float64")

_PREDICTORS: dict[tuple[Any, ...], TensorPredictor] = {}
_PREDICTORS_LOCK = threading.Lock()


def resolve_device(device: Any) -> str:
    """Return the torch device name, refusing a CUDA device that this torch build or machine lacks."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        reason = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise ValueError(f"device {str(device)!r} is not available: {reason} (torch {torch.__version__}); "
                         "use device='cpu' or device=None")
    return str(resolved)


def resolve_dtype(dtype: Any) -> str:
    """Return ``"float32"`` or ``"float64"`` for that name or torch dtype; raise ``ValueError`` otherwise."""
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return name


def _model_key(source: str | Path) -> tuple[Any, ...]:
    if isinstance(source, str) or not source.is_file():  # a missing file fails in the loader, with its message
        return ("shipped" if isinstance(source, str) else "file", str(source))
    stat = source.stat()  # mtime and size: a rewritten checkpoint at the same path is reloaded, not stale
    return ("file", str(source), stat.st_mtime_ns, stat.st_size)


def load_predictor(
    model: str | os.PathLike = "default", device: Any = None, dtype: Any = "float32"
) -> TensorPredictor:
    """Load a predictor once per (model, device, dtype) and serve it from the module cache afterwards.

    Parameters
    ----------
    model
        A checkpoint path, or the name of a shipped model (``"default"``).
    device
        Torch device; ``None`` means CUDA if available, else CPU.
    dtype
        ``"float32"`` or ``"float64"`` (or the torch dtype).

    Raises
    ------
    gmt_ase.inference.io.CheckpointError
        For a corrupt, truncated, foreign or mismatched checkpoint.

    """
    import torch

    from gmt_ase.inference.io import model_source
    from gmt_ase.inference.predictor import TensorPredictor

    device_name, dtype_name = resolve_device(device), resolve_dtype(dtype)
    source = model_source(model)
    key = (*_model_key(source), device_name, dtype_name)
    with _PREDICTORS_LOCK:
        if key not in _PREDICTORS:
            _PREDICTORS[key] = TensorPredictor.from_checkpoint(
                source, device=device_name, dtype=getattr(torch, dtype_name)
            )
        return _PREDICTORS[key]


def clear_predictor_cache() -> None:
    """Forget every cached predictor (frees their memory once no calculator holds them)."""
    with _PREDICTORS_LOCK:
        _PREDICTORS.clear()
