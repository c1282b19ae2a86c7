"""Per-crystal spreads for one predicted chunk: the predictor's hook into :mod:`gmt_ase.invariant.spread`.

:meth:`TensorPredictor.predict <gmt_ase.inference.predictor.TensorPredictor.predict>` calls
:func:`add_crystal_spreads` once per chunk, after projecting the tensors, with the members' outputs recorded by
:func:`gmt_ase.inference.members.capture_member_outputs` during the chunk's forward pass. Without a
``"crystal_spread"`` in the calibration it does nothing, so older checkpoints keep their global sigmas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gmt_ase.inference.members import member_invariants
from gmt_ase.invariant.invariant_model import INVARIANTS, network_invariants
from gmt_ase.invariant.uncertainty import scale_uncertainty

__all__ = ["add_crystal_spreads", "chunk_log_sigmas"]


def chunk_log_sigmas(
    predictor: Any,
    chunk: Sequence[Any],
    graphs: Sequence[Any],
    member_calls: Sequence[list[dict[str, np.ndarray]]],
    results: Sequence[dict[str, Any]],
    descriptors: np.ndarray | None = None,
) -> dict[str, np.ndarray] | None:
    """(B,) log-normal sigma per invariant of one chunk's results, or ``None`` without a crystal spread.

    Parameters
    ----------
    predictor
        The :class:`~gmt_ase.inference.predictor.TensorPredictor` (its calibration and invariant model).
    chunk, graphs
        The chunk's :class:`~gmt_ase.graph.crystal.CrystalInput` and their graphs.
    member_calls
        What :func:`~gmt_ase.inference.members.capture_member_outputs` recorded; the last call is the chunk's.
    results
        The chunk's final (projected) tensors.
    descriptors
        The invariant model's descriptors of the chunk (model columns), when the caller has them.
    """
    calibration = predictor.calibration
    spread = None if calibration is None else calibration.get("crystal_spread")
    if spread is None or predictor.invariant_model is None or not results:
        return None
    if descriptors is None:
        model = predictor.invariant_model
        descriptors = model.columns(model.all_descriptors(graphs, [crystal.cell for crystal in chunk]))
    finals = [network_invariants(result) for result in results]
    values = {name: np.array([final[name] for final in finals]) for name in INVARIANTS}
    members = member_invariants(member_calls[-1]) if member_calls and member_calls[-1] else None
    return spread.log_sigmas(values, members, descriptors, [np.asarray(g.numbers) for g in graphs])


def add_crystal_spreads(
    predictor: Any,
    chunk: Sequence[Any],
    graphs: Sequence[Any],
    member_calls: Sequence[list[dict[str, np.ndarray]]],
    results: list[dict[str, Any]],
    descriptors: np.ndarray | None = None,
) -> None:
    """Replace each result's global ``"uncertainty"`` by its per-crystal one, in place.

    The arguments are those of :func:`chunk_log_sigmas`; without a crystal spread in the calibration
    nothing changes.
    """
    sigmas = chunk_log_sigmas(predictor, chunk, graphs, member_calls, results, descriptors)
    if sigmas is None:
        return
    log_sigma = predictor.calibration["log_sigma"]
    for b, result in enumerate(results):
        if "uncertainty" in result:
            own = {name: float(values[b]) for name, values in sigmas.items()}
            result["uncertainty"] = scale_uncertainty(result["uncertainty"], log_sigma, own)
