"""Periodic crystal graphs and batches: the only place that turns arrays into model inputs.

The edge convention is written down once, in :mod:`gmt_ase.graph.neighbors`: ``edge_index[0]`` is the
centre atom (messages are summed there), ``edge_index[1]`` the neighbour, ``edge_vec = r_j + S @ cell - r_i``.

The batch is one plain dictionary of tensors whose keys and shapes are declared in :data:`BATCH_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gmt_ase.graph.crystal import CrystalInput
from gmt_ase.graph.neighbors import neighbor_list

__all__ = [
    "BATCH_KEYS",
    "CrystalGraph",
    "build_graph",
    "collate",
    "crystal_graph",
    "neighbor_list",
    "padded_operations",
]

#: Keys of a collated batch and their shapes (N atoms, E edges, B crystals, G max. operations).
BATCH_KEYS: Mapping[str, str] = {
    "numbers": "(N,) int64 atomic numbers",
    "edge_index": "(2, E) int64 [centre i, neighbour j]",
    "edge_vec": "(E, 3) float Angstrom, r_j + shift - r_i",
    "atom_crystal": "(N,) int64 index of each atom's crystal",
    "num_atoms": "(B,) int64",
    "operations": "(B, G, 3, 3) float Cartesian point-group operations, identity-padded",
    "operation_weights": "(B, G) float 1 for real operations, 0 for padding",
}


@dataclass(frozen=True)
class CrystalGraph:
    """A single crystal ready to be batched.

    Attributes
    ----------
    numbers
        (n,) atomic numbers.
    edge_index
        (2, E) centre/neighbour indices.
    edge_vec
        (E, 3) edge vectors, Angstrom.
    operations
        (G, 3, 3) Cartesian point-group operations.
    """

    numbers: np.ndarray
    edge_index: np.ndarray
    edge_vec: np.ndarray
    operations: np.ndarray


def build_graph(
    numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray, operations: np.ndarray, cutoff: float
) -> CrystalGraph:
    """Build the periodic graph of one crystal (see :func:`neighbor_list` for the conventions)."""
    edge_index, edge_vec = neighbor_list(positions, cell, cutoff)
    return CrystalGraph(
        numbers=np.asarray(numbers, dtype=np.int64),
        edge_index=edge_index,
        edge_vec=edge_vec,
        operations=np.asarray(operations, dtype=np.float64),
    )


def crystal_graph(crystal: CrystalInput, cutoff: float) -> CrystalGraph:
    """Graph of a validated crystal (:func:`gmt_ase.graph.crystal.prepare_crystal`): inference and training.

    The crystal's own neighbour list is reused when it was built at this cutoff.
    """
    edges = crystal.edges
    if edges is None or edges.cutoff != cutoff:
        return build_graph(crystal.numbers, crystal.positions, crystal.cell, crystal.operations, cutoff)
    return CrystalGraph(
        numbers=np.asarray(crystal.numbers, dtype=np.int64),
        edge_index=edges.edge_index,
        edge_vec=edges.edge_vec,
        operations=np.asarray(crystal.operations, dtype=np.float64),
    )


def padded_operations(operations: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Stack point groups of different orders: (B, G, 3, 3) float64, identity-padded, and (B, G) weights.

    A weight is 1 for a real operation and 0 for padding, as :func:`gmt_ase.core.symmetry.reynolds_projection`
    expects; G is the largest group's order.
    """
    groups = [np.asarray(ops, dtype=np.float64) for ops in operations]
    size = max(len(ops) for ops in groups)
    padded = np.tile(np.eye(3), (len(groups), size, 1, 1))
    weights = np.zeros((len(groups), size))
    for b, ops in enumerate(groups):
        padded[b, : len(ops)], weights[b, : len(ops)] = ops, 1.0
    return padded, weights


def collate(graphs: Sequence[CrystalGraph], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Concatenate crystal graphs into one batch dictionary (keys: :data:`BATCH_KEYS`)."""
    if not graphs:
        raise ValueError("cannot collate an empty list of crystal graphs")
    num_atoms = np.array([len(g.numbers) for g in graphs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(num_atoms)[:-1]])
    operations, weights = padded_operations([g.operations for g in graphs])  # (B, G, 3, 3), (B, G)
    return {
        "numbers": torch.from_numpy(np.concatenate([g.numbers for g in graphs])),
        "edge_index": torch.from_numpy(
            np.concatenate([g.edge_index + off for g, off in zip(graphs, offsets, strict=True)], axis=1)
        ),
        "edge_vec": torch.from_numpy(np.concatenate([g.edge_vec for g in graphs])).to(dtype),
        "atom_crystal": torch.from_numpy(np.repeat(np.arange(len(graphs)), num_atoms)),
        "num_atoms": torch.from_numpy(num_atoms),
        "operations": torch.from_numpy(operations).to(dtype),
        "operation_weights": torch.from_numpy(weights).to(dtype),
    }
