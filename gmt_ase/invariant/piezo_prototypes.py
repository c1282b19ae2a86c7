"""Piezoelectric prototypes: the DFT tensor of the most similar known crystal of the same space group.

On a few hundred piezoelectric tensors the equivariant network learns a tensor's magnitude poorly and its
direction (sign and shape inside the symmetry-allowed subspace) hardly at all for crystals it has not seen
(DESIGN.md section 7). Crystals of one space group with similar chemistry and bonding, though, tend to have
similar tensors in the space group's standard frame: a wurtzite resembles another wurtzite. This module
transfers the direction of the nearest training crystal's tensor (same space-group number, nearest in
standardised descriptor space) to the query crystal, exactly equivariantly:

1. The stored tensor lives in spglib's standard frame of its crystal; it is rotated into the query's frame
   with the query's standard rotation. That rotation is fixed only up to an operation of the standard
   lattice's holohedry (and a reflected crystal has the same standard rotation as the original), so every
   image of the tensor under the holohedry is a candidate.
2. The candidate whose relation to the query's own bond-polarity tensors (:func:`bond_tensors`: cosines with
   nine odd rank-3 tensors built from bond directions and electronegativity differences) is closest to the
   stored crystal's relation to its own bond tensors is kept. The relation is invariant, the candidate set
   rotates (and reflects) with the crystal, so the choice does too: rotating or reflecting the crystal
   rotates or reflects the prediction.
3. The candidate is projected onto the query's point group (exact symmetry) and scaled to a norm that
   blends, in log space, the prototype's norm with the invariant model's.

Crystals without a prototype of their space group keep the network's direction. The prototypes are plain
arrays stored in the checkpoint under ``"piezo_prototypes"``. NumPy and the core layer only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from gmt_ase.core.symmetry import lattice_operations, reynolds_projection
from gmt_ase.invariant.descriptors import DESCRIPTOR_NAMES, ElementTable, descriptor_columns, first_shell
from gmt_ase.invariant.packed_arrays import pack_arrays, unpack_arrays

__all__ = [
    "FAR_DISTANCE",
    "FORMAT_VERSION",
    "PiezoPrototypes",
    "bond_tensors",
    "distant_prototype_warning",
    "rotate_rank3",
    "tensor_relations",
]

FORMAT_VERSION = 1
#: Number of bond tensors of :func:`bond_tensors`.
N_BOND_TENSORS = 9
#: Standardised descriptor distance from which the nearest prototype says little. Issue 9, 152 held-out piezo
#: tensors (validation with training-split prototypes, test with train + val): EwT25 0.32 / 0.13 / 0.11 / 0.00
#: and directions within cos 0.969 0.41 / 0.31 / 0.19 / 0.16 for distances < 3, 3-5, 5-8, >= 8 (41, 39, 36, 31
#: crystals); 5 crystals had no prototype of their space group (0 / 0).
FAR_DISTANCE = 8.0
#: A projected tensor below this fraction of its norm before projection is zero by symmetry.
_ZERO_FRACTION = 1e-8
#: Enantiomorphic space-group pairs (P4_1 / P4_3, P3_1 21 / P3_2 21, ...): a reflected crystal of one is a
#: crystal of the other, so both look up the same prototypes (reflection equivariance).
_ENANTIOMORPH_OF = {78: 76, 95: 91, 96: 92, 145: 144, 153: 151, 154: 152, 170: 169, 172: 171, 179: 178, 181: 180,
                    213: 212}
_ARRAYS = {"space_groups": "<i4", "descriptors": "<f8", "tensors": "<f8", "norms": "<f8", "relations": "<f8"}


def bond_tensors(
    numbers: np.ndarray, edge_index: np.ndarray, edge_vec: np.ndarray, table: ElementTable
) -> np.ndarray:
    """Nine odd rank-3 tensors of a crystal's bond polarity, shape (9, 3, 3, 3).

    For three bond sets and weights (first-shell bonds weighted by the electronegativity difference
    ``dX = X(neighbour) - X(centre)``, first-shell bonds weighted by ``sign(dX) / r^2``, all bonds within the
    cutoff weighted by ``dX / r^3``), with ``u`` the unit bond vector and ``v = sum w u``: ``sum w u u u``,
    ``v x I`` and the symmetrised ``(I v + v I) / 2`` in the last two indices, all per atom. Each is invariant
    under the crystal's space group (a sum over all bonds), changes sign under inversion and rotates with the
    crystal.

    Parameters
    ----------
    numbers
        (n,) atomic numbers.
    edge_index
        (2, E) centre and neighbour atom of each directed edge.
    edge_vec
        (E, 3) edge vectors, neighbour minus centre, Angstrom.
    table
        Element properties (electronegativity ``X``).
    """
    numbers = np.asarray(numbers)
    centre, neighbour = np.asarray(edge_index)
    edge_vec = np.asarray(edge_vec, dtype=np.float64)
    out = np.zeros((N_BOND_TENSORS, 3, 3, 3))
    if len(centre) == 0:
        return out
    electronegativity = table.column("X")[numbers]
    length = np.linalg.norm(edge_vec, axis=1)
    _, shell = first_shell(centre, length, len(numbers), np.inf)  # the descriptors' first shells
    difference = electronegativity[neighbour] - electronegativity[centre]
    weights = (
        (shell, difference),
        (shell, np.sign(difference) / length**2),
        (np.ones_like(shell), difference / length**3),
    )
    eye = np.eye(3)
    for k, (mask, weight) in enumerate(weights):
        unit = edge_vec[mask] / length[mask, None]
        w = weight[mask] / len(numbers)
        polar = w @ unit  # (3,)
        out[3 * k] = np.einsum("e,ei,ej,ek->ijk", w, unit, unit, unit)
        out[3 * k + 1] = np.einsum("i,jk->ijk", polar, eye)
        out[3 * k + 2] = 0.5 * (np.einsum("j,ik->ijk", polar, eye) + np.einsum("k,ij->ijk", polar, eye))
    return out


def rotate_rank3(rotations: np.ndarray, tensor: np.ndarray) -> np.ndarray:
    """Rotate a (3, 3, 3) tensor by each of (G, 3, 3) matrices: (G, 3, 3, 3)."""
    return np.einsum("gia,gjb,gkc,abc->gijk", rotations, rotations, rotations, tensor)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def tensor_relations(tensors: np.ndarray, bonds: np.ndarray) -> np.ndarray:
    """Cosines of (G, 27) tensors with one crystal's (9, 27) bond tensors: (G, 9), invariant."""
    return _unit_rows(tensors) @ _unit_rows(bonds).T


def distant_prototype_warning(distance: float) -> str | None:
    """Warn about a piezo tensor whose prototype is :data:`FAR_DISTANCE` or more away (None: no warning).

    ``distance`` is ``inf`` when no prototype could be used (none of the space group): the direction is then
    the network's.
    """
    if distance < FAR_DISTANCE:
        return None
    if not np.isfinite(distance):
        return ("piezoelectric tensor: no known crystal of this space group gave its direction; the "
                "network's direction is right for about 1 in 9 held-out crystals, treat the tensor as rough")
    return (f"piezoelectric tensor: the most similar known crystal of this space group is far away (descriptor "
            f"distance {distance:.1f} >= {FAR_DISTANCE:g}); held-out tensors this far were rarely within 25 %")


@dataclass(frozen=True)
class PiezoPrototypes:
    """Known piezoelectric tensors, in their crystals' standard frames, and the transfer to a new crystal.

    Attributes
    ----------
    space_groups
        (n,) space-group number of each prototype.
    descriptors
        (n, D) crystal descriptors (:data:`descriptor_names`).
    tensors
        (n, 27) unit piezoelectric tensors in spglib's standard frame of each prototype.
    norms
        (n,) Frobenius norms of the tensors, C/m^2.
    relations
        (n, 9) cosines of each unit tensor with its crystal's :func:`bond_tensors`.
    ids
        Material id of each prototype (provenance).
    norm_weight
        Weight of the prototype's log norm in the blend with the invariant model's (the rest).
    descriptor_names
        Columns of ``descriptors``.
    """

    space_groups: np.ndarray
    descriptors: np.ndarray
    tensors: np.ndarray
    norms: np.ndarray
    relations: np.ndarray
    ids: tuple[str, ...]
    norm_weight: float = 0.5
    descriptor_names: tuple[str, ...] = DESCRIPTOR_NAMES

    def __post_init__(self) -> None:
        n = len(self.space_groups)
        shapes = {
            "descriptors": (n, len(self.descriptor_names)),
            "tensors": (n, 27),
            "norms": (n,),
            "relations": (n, N_BOND_TENSORS),
        }
        for name, shape in shapes.items():
            found = np.shape(getattr(self, name))
            if found != shape:
                raise ValueError(f"piezo prototypes: {name} has shape {found}, expected {shape}")
        if len(self.ids) != n:
            raise ValueError(f"piezo prototypes: {len(self.ids)} ids for {n} tensors")
        if not 0.0 <= self.norm_weight <= 1.0:
            raise ValueError(f"norm_weight must be in [0, 1], got {self.norm_weight}")
        if n and not (np.all(np.isfinite(self.tensors)) and np.all(self.norms > 0)):
            raise ValueError("piezo prototypes must be finite with positive norms")
        _ = self._columns  # resolving the columns refuses descriptors this code does not compute

    @cached_property
    def _columns(self) -> np.ndarray:
        """Positions of the prototypes' descriptors in :data:`DESCRIPTOR_NAMES` (found once)."""
        return descriptor_columns(self.descriptor_names, "piezo prototypes use")

    @cached_property
    def _scaled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Descriptor centre and scale of the prototypes, and the prototypes standardised by them."""
        centre = self.descriptors.mean(axis=0)
        scale = self.descriptors.std(axis=0) + 1e-9
        return centre, scale, (self.descriptors - centre) / scale

    @cached_property
    def _groups(self) -> np.ndarray:
        """Space-group number of each prototype, enantiomorphic pairs merged."""
        return np.array([_ENANTIOMORPH_OF.get(int(n), int(n)) for n in self.space_groups], dtype=np.int64)

    def nearest(self, descriptors: np.ndarray, space_group: int) -> tuple[int, float] | None:
        """Nearest prototype to a full descriptor row among those of ``space_group``, and its distance.

        A space group and its enantiomorph count as one; the distance is Euclidean in descriptors standardised
        over the prototypes. None: no prototype of the group.
        """
        candidates = np.flatnonzero(self._groups == _ENANTIOMORPH_OF.get(int(space_group), int(space_group)))
        if candidates.size == 0:
            return None
        centre, scale, scaled = self._scaled
        query = (np.asarray(descriptors, dtype=np.float64)[self._columns] - centre) / scale
        distances = np.linalg.norm(scaled[candidates] - query, axis=1)
        best = int(np.argmin(distances))
        return int(candidates[best]), float(distances[best])

    def transfer(
        self,
        index: int,
        standard_rotation: np.ndarray,
        standard_lattice: np.ndarray,
        operations: np.ndarray,
        bonds: np.ndarray,
        reference: np.ndarray | None = None,
    ) -> np.ndarray | None:
        """Map the prototype's unit tensor to the query's frame and symmetry (None: zero on the query's group).

        Parameters
        ----------
        index
            Prototype (:meth:`nearest`).
        standard_rotation, standard_lattice
            The query's standard frame (:class:`gmt_ase.core.symmetry.SymmetryInfo`).
        operations
            (G, 3, 3) the query's Cartesian point-group operations.
        bonds
            (9, 3, 3, 3) the query's :func:`bond_tensors`.
        reference
            (3, 3, 3) an equivariant tensor (the network's) that breaks exact ties between candidates.
        """
        try:
            holohedry = lattice_operations(standard_lattice)
        except ValueError:  # spglib found no lattice symmetry: no candidates, keep the network's direction
            return None
        to_query = np.asarray(standard_rotation, dtype=np.float64).T[None] @ holohedry  # standard -> query
        candidates = rotate_rank3(to_query, self.tensors[index].reshape(3, 3, 3))
        candidates = reynolds_projection(candidates, operations, rank=3).reshape(len(to_query), 27)
        kept = np.linalg.norm(candidates, axis=1) > _ZERO_FRACTION
        if not np.any(kept):
            return None
        candidates = _unit_rows(candidates[kept])
        relations = tensor_relations(candidates, bonds.reshape(N_BOND_TENSORS, 27))
        mismatch = np.linalg.norm(relations - self.relations[index], axis=1)
        best = mismatch <= mismatch.min() + 1e-9
        if reference is not None and best.sum() > 1:
            agreement = candidates[best] @ np.asarray(reference, dtype=np.float64).ravel()
            return candidates[np.flatnonzero(best)[np.argmax(agreement)]].reshape(3, 3, 3)
        return candidates[np.flatnonzero(best)[0]].reshape(3, 3, 3)

    def predict(
        self,
        descriptors: np.ndarray,
        space_group: int,
        standard_rotation: np.ndarray | None,
        standard_lattice: np.ndarray | None,
        operations: np.ndarray,
        bonds: np.ndarray,
        model_norm: float,
        reference: np.ndarray | None = None,
    ) -> tuple[np.ndarray, str, float] | None:
        """Piezoelectric tensor (3, 3, 3) C/m^2 of one crystal, the prototype's id and distance (None: none).

        ``model_norm`` is the invariant model's norm for the crystal; the result's norm blends it with the
        prototype's (:attr:`norm_weight`). See :meth:`transfer` for the other parameters.
        """
        if standard_rotation is None or standard_lattice is None or not model_norm > 0:
            return None
        found = self.nearest(descriptors, space_group)
        if found is None:
            return None
        index, distance = found
        direction = self.transfer(index, standard_rotation, standard_lattice, operations, bonds, reference)
        if direction is None:
            return None
        log_norm = self.norm_weight * np.log(self.norms[index]) + (1.0 - self.norm_weight) * np.log(model_norm)
        return np.exp(log_norm) * direction, self.ids[index], distance

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint (arrays as zlib-compressed little-endian bytes)."""
        return {
            "format_version": FORMAT_VERSION,
            "descriptor_names": list(self.descriptor_names),
            "norm_weight": float(self.norm_weight),
            "ids": list(self.ids),
            "n": len(self.ids),
            **pack_arrays({key: getattr(self, key) for key in _ARRAYS}, _ARRAYS),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PiezoPrototypes:
        """Inverse of :meth:`to_dict`; refuses other formats and corrupt arrays."""
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"piezo prototypes format {data.get('format_version')!r}, expected {FORMAT_VERSION}")
        n, names = int(data["n"]), tuple(data["descriptor_names"])
        widths = {"space_groups": None, "descriptors": len(names), "tensors": 27, "norms": None,
                  "relations": N_BOND_TENSORS}
        arrays = unpack_arrays(data, _ARRAYS, "piezo prototype")
        for key, flat in list(arrays.items()):
            width = widths[key]
            if flat.size != n * (width or 1):
                raise ValueError(f"corrupt piezo prototype data ({key}): {flat.size} values for {n} prototypes")
            arrays[key] = flat.reshape(n, width) if width else flat
        return cls(
            space_groups=arrays["space_groups"].astype(np.int64),
            descriptors=arrays["descriptors"].astype(np.float64),
            tensors=arrays["tensors"].astype(np.float64),
            norms=arrays["norms"].astype(np.float64),
            relations=arrays["relations"].astype(np.float64),
            ids=tuple(str(i) for i in data["ids"]),
            norm_weight=float(data["norm_weight"]),
            descriptor_names=names,
        )

    @classmethod
    def build(
        cls,
        space_groups: Sequence[int],
        descriptors: np.ndarray,
        tensors: Sequence[np.ndarray],
        standard_rotations: Sequence[np.ndarray],
        bonds: Sequence[np.ndarray],
        ids: Sequence[str],
        norm_weight: float = 0.5,
        descriptor_names: Sequence[str] = DESCRIPTOR_NAMES,
    ) -> PiezoPrototypes:
        """Prototypes from crystals' DFT tensors in their own frames (zero tensors are left out).

        Parameters
        ----------
        space_groups, descriptors, tensors, standard_rotations, bonds, ids
            Per crystal: space-group number, descriptor row, (3, 3, 3) tensor in the crystal's frame, its
            standard rotation, its (9, 3, 3, 3) :func:`bond_tensors` and material id.
        """
        rows = []
        for k, (tensor, rotation, bond) in enumerate(zip(tensors, standard_rotations, bonds, strict=True)):
            tensor = np.asarray(tensor, dtype=np.float64)
            norm = float(np.linalg.norm(tensor))
            if not np.isfinite(norm) or norm <= 1e-6:
                continue
            unit = tensor.ravel() / norm
            standard = rotate_rank3(np.asarray(rotation, dtype=np.float64)[None], tensor / norm)[0].ravel()
            relation = tensor_relations(unit[None], np.asarray(bond).reshape(N_BOND_TENSORS, 27))[0]
            rows.append((k, standard, norm, relation))
        keep = [r[0] for r in rows]
        return cls(
            space_groups=np.asarray(space_groups, dtype=np.int64)[keep],
            descriptors=np.asarray(descriptors, dtype=np.float64)[keep].reshape(len(keep), len(descriptor_names)),
            tensors=np.array([r[1] for r in rows]).reshape(len(keep), 27),
            norms=np.array([r[2] for r in rows]),
            relations=np.array([r[3] for r in rows]).reshape(len(keep), N_BOND_TENSORS),
            ids=tuple(str(ids[k]) for k in keep),
            norm_weight=norm_weight,
            descriptor_names=tuple(descriptor_names),
        )
