"""NumPy arrays as zlib-compressed little-endian bytes: the compact, pickle-free form the checkpoint stores.

``torch.load(weights_only=True)`` reads bytes quickly, while its restricted unpickler is slow on millions
of list items; compression halves regular arrays such as child indices. Used for the invariant model's trees
and the piezoelectric prototypes. NumPy only.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["pack_arrays", "unpack_arrays"]


def pack_arrays(arrays: Mapping[str, Any], dtypes: Mapping[str, str]) -> dict[str, bytes]:
    """Compress each array of ``dtypes`` (key -> little-endian dtype such as ``"<f8"``) to bytes."""
    return {
        key: zlib.compress(np.ascontiguousarray(arrays[key], dtype=dtype).tobytes(), 6) for key, dtype in dtypes.items()
    }


def unpack_arrays(data: Mapping[str, Any], dtypes: Mapping[str, str], what: str) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays` (flat arrays); corrupt bytes raise ``ValueError("corrupt <what> data ...")``."""
    out = {}
    for key, dtype in dtypes.items():
        try:
            out[key] = np.frombuffer(zlib.decompress(data[key]), dtype=dtype)
        except (zlib.error, ValueError) as error:
            raise ValueError(f"corrupt {what} data ({key}): {error}") from error
    return out
