"""The outputs of an ensemble's members, recorded while the ensemble runs (no second forward pass).

:class:`gmt_ase.nn.model.GMTEnsemble` returns the members' mean; how far the members disagree is one input of
the per-crystal spread (:mod:`gmt_ase.invariant.spread`). :func:`capture_member_outputs` registers forward
hooks on the members for the duration of a ``with`` block and removes them afterwards, so the model is left
exactly as it was; :func:`member_invariants` turns the recorded tensors into rotation invariants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants

__all__ = ["capture_member_outputs", "member_invariants"]

#: The member outputs the invariants read.
_KEYS = ("dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic")


@contextmanager
def capture_member_outputs(model: torch.nn.Module) -> Iterator[list[list[dict[str, np.ndarray]]]]:
    """Record every member's outputs during the ensemble's forward calls inside the block.

    Yields a list that receives, per forward call of ``model``, a list over members of float64 arrays
    ``{key: (B, 3, ..., 3)}``. A model without ``members`` (a single network) records nothing: the list
    stays empty.

    Examples
    --------
    >>> with capture_member_outputs(model) as members:  # doctest: +SKIP
    ...     outputs = model(batch)
    >>> len(members[0]) == len(model.members)  # doctest: +SKIP
    True
    """
    calls: list[list[dict[str, np.ndarray]]] = []
    members = getattr(model, "members", None)
    if members is None:
        yield calls
        return
    buffer: list[dict[str, np.ndarray]] = []

    def record(_module: torch.nn.Module, _args: Any, output: dict[str, torch.Tensor]) -> None:
        buffer.append({k: output[k].detach().to("cpu", torch.float64).numpy() for k in _KEYS if k in output})

    def close_call(_module: torch.nn.Module, _args: Any, _output: Any) -> None:
        calls.append(list(buffer))
        buffer.clear()

    handles = [member.register_forward_hook(record) for member in members]
    handles.append(model.register_forward_hook(close_call))
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def member_invariants(outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """(M, B) invariants of the members' tensors of one forward call (keys of :data:`INVARIANTS`)."""
    n_members, n_crystals = len(outputs), len(next(iter(outputs[0].values())))
    out = {name: np.empty((n_members, n_crystals)) for name in INVARIANTS}
    for m, member in enumerate(outputs):
        for b in range(n_crystals):
            values = network_invariants({k: member[k][b] for k in _KEYS})
            for name in INVARIANTS:
                out[name][m, b] = values[name]
    return out
