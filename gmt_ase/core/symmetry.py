"""The one symmetry projector shared by the model, the calculator and the workflows.

Algorithm (DESIGN.md section 3):

1. Find the space group with one spglib search on the input cell, and take the point group's
   rotations ``W_g`` from spglib's database as integer matrices in the standard conventional basis of
   the detected setting. That basis is built from the input lattice itself (``A_s = A P^-1``, with
   spglib's transformation matrix ``P``), unidealised and in the input orientation, so a supercell still
   yields the whole group (spglib's own rotations for a supercell are only a subgroup, the trap of
   pymatgen's ``fit_to_structure``). This gives the same operations, to 1e-15, as the primitive-cell
   route (``standardize_cell(to_primitive=True, no_idealize=True)`` then a second search), at half the
   cost; ``tests/test_symmetry_routes.py`` checks the two against each other.
2. Turn each distinct ``W_g`` into a Cartesian matrix ``R_g = L^T W_g L^-T``, with ``L`` that basis
   (rows are lattice vectors).
3. On noisy structures the ``R_g`` are only nearly orthogonal. The Weyl step
   ``R~_g = H^(1/2) R_g H^(-1/2)`` with ``H = mean_g R_g^T R_g`` makes them exactly orthogonal while
   keeping the group law and O(3)-equivariance.
4. The Reynolds operator ``P(T) = mean_g R~_g . T`` (acting on every index) is then the orthogonal
   projection onto the symmetric tensors: idempotent, self-adjoint and equivariant.

:func:`reynolds_projection` works on NumPy arrays and on torch tensors alike (with batch dimensions), so
the model applies exactly the same operator as the calculator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import spglib
from spglib.error import SpglibError

__all__ = [
    "DEFAULT_SYMPREC",
    "SymmetryInfo",
    "analyze_cell",
    "analyze_symmetry",
    "cell_arrays",
    "degenerate_cell_reason",
    "lattice_operations",
    "point_group_operations",
    "reynolds_projection",
    "symmetrize",
]

#: Default spglib distance tolerance in Angstrom (DESIGN.md section 3); every default symprec is this one.
DEFAULT_SYMPREC = 1e-2
_MAX_RANK = 4
_T = TypeVar("_T")
_INDEX_LETTERS = "ijkl"
_OUTPUT_LETTERS = "abcd"


@dataclass(frozen=True)
class SymmetryInfo:
    """Symmetry detected for one crystal.

    Attributes
    ----------
    space_group_symbol
        Hermann-Mauguin symbol of the space group, e.g. ``"P4_2/mnm"``.
    space_group_number
        International space-group number (1-230).
    point_group
        Hermann-Mauguin symbol of the point group, e.g. ``"4/mmm"``.
    symprec
        Distance tolerance in Angstrom that was used.
    operations
        Orthonormal Cartesian point-group operations, shape (n_ops, 3, 3).
    n_orbits
        Number of symmetry-distinct atoms (Wyckoff orbits); 1 when every atom is equivalent.
    standard_rotation
        (3, 3) proper rotation from the input's Cartesian frame to spglib's standard frame (that of the
        idealised standard conventional cell), fixed up to an operation of :attr:`standard_lattice`'s
        holohedry; ``None`` when not recorded.
    standard_lattice
        (3, 3) idealised standard conventional lattice (rows), in the standard frame; ``None`` when not
        recorded.
    """

    space_group_symbol: str
    space_group_number: int
    point_group: str
    symprec: float
    operations: np.ndarray
    n_orbits: int = 0
    standard_rotation: np.ndarray | None = None
    standard_lattice: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (without the operation matrices)."""
        return {
            "space_group_symbol": self.space_group_symbol,
            "space_group_number": self.space_group_number,
            "point_group": self.point_group,
            "symprec": self.symprec,
            "n_operations": int(len(self.operations)),
        }


def cell_arrays(atoms: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(lattice, scaled_positions, numbers)`` of an ASE ``Atoms`` or pymatgen ``Structure``.

    The guard of :func:`analyze_symmetry` for direct callers (workflows, :func:`symmetrize`). The prediction
    and training path validates a structure once, with :mod:`gmt_ase.graph.validation`, and then calls
    :func:`analyze_cell` on the checked arrays (``gmt_ase.graph.crystal.prepare_crystal``).

    Raises
    ------
    ValueError
        If the object is empty, not periodic in all three directions, or has a degenerate cell.
    TypeError
        If the object is neither an ASE ``Atoms`` nor a pymatgen ``Structure``.
    """
    if hasattr(atoms, "get_cell") and hasattr(atoms, "get_pbc"):
        if not np.all(atoms.get_pbc()):
            raise ValueError(
                f"structure must be periodic in all three directions, got pbc={list(atoms.get_pbc())}"
            )
        lattice = np.array(atoms.get_cell()[:], dtype=float)
        numbers = np.array(atoms.get_atomic_numbers(), dtype=int)
        if len(numbers) == 0:
            raise ValueError("structure is empty: it has no atoms")
        _check_lattice(lattice)
        scaled = np.array(atoms.get_scaled_positions(wrap=False), dtype=float)
    elif hasattr(atoms, "lattice") and hasattr(atoms, "frac_coords"):
        if len(atoms) == 0:
            raise ValueError("structure is empty: it has no sites")
        lattice = np.array(atoms.lattice.matrix, dtype=float)
        _check_lattice(lattice)
        scaled = np.array(atoms.frac_coords, dtype=float)
        numbers = np.array(atoms.atomic_numbers, dtype=int)
    else:
        raise TypeError(f"expected ase.Atoms or pymatgen Structure, got {type(atoms).__name__}")
    if not (np.all(np.isfinite(lattice)) and np.all(np.isfinite(scaled))):
        raise ValueError("structure contains NaN or infinite cell or position values")
    return lattice, scaled, numbers


def degenerate_cell_reason(lattice: np.ndarray) -> str | None:
    """Why a (3, 3) lattice (rows are vectors, Angstrom) cannot hold a crystal, or None if it can.

    The one lattice check of gmt_ase: :func:`cell_arrays` raises ``ValueError`` with it and
    :func:`gmt_ase.graph.validation.check_cell` raises ``DegenerateCellError`` with it.
    """
    lengths = np.linalg.norm(lattice, axis=1)
    if np.any(lengths < 1e-6):
        return f"cell has a zero-length lattice vector (lengths {np.round(lengths, 6).tolist()} A)"
    volume = abs(float(np.linalg.det(lattice)))
    if volume < 1e-6 * float(np.prod(lengths)):
        return (f"cell is degenerate (lattice vectors are coplanar): volume {volume:.3g} A^3 for lattice "
                f"lengths {np.round(lengths, 4).tolist()} A")
    return None


def _check_lattice(lattice: np.ndarray) -> None:
    if lattice.shape != (3, 3) or not np.all(np.isfinite(lattice)):
        raise ValueError("cell must be a finite 3x3 matrix")
    reason = degenerate_cell_reason(lattice)
    if reason is not None:
        raise ValueError(reason)


def analyze_symmetry(atoms: Any, symprec: float = DEFAULT_SYMPREC) -> SymmetryInfo:
    """Detect the space group and the Cartesian point-group operations of a crystal.

    Parameters
    ----------
    atoms
        ASE ``Atoms`` or pymatgen ``Structure``, periodic in three directions.
    symprec
        spglib distance tolerance in Angstrom.

    Returns
    -------
    SymmetryInfo
        Space group, point group and the orthonormal operations in the input's Cartesian frame.
    """
    return analyze_cell(*cell_arrays(atoms), symprec)


def analyze_cell(
    lattice: np.ndarray, scaled: np.ndarray, numbers: np.ndarray, symprec: float = DEFAULT_SYMPREC
) -> SymmetryInfo:
    """:func:`analyze_symmetry` of a crystal given as arrays that were checked already.

    Parameters
    ----------
    lattice
        (3, 3) lattice, rows are lattice vectors, Angstrom (finite, not degenerate).
    scaled
        (n, 3) fractional positions.
    numbers
        (n,) atomic numbers.
    symprec
        spglib distance tolerance in Angstrom.

    Returns
    -------
    SymmetryInfo
        As :func:`analyze_symmetry`.
    """
    if not symprec > 0:
        raise ValueError(f"symprec must be positive, got {symprec}")
    dataset = _spglib_call(spglib.get_symmetry_dataset, (lattice, scaled, numbers), symprec=symprec)
    if dataset is None:
        raise ValueError(f"spglib found no symmetry dataset at symprec={symprec} A (atoms too close?)")
    database = _spglib_call(spglib.get_symmetry_from_database, dataset.hall_number)
    if database is None:
        raise ValueError(f"spglib has no operations for Hall number {dataset.hall_number}")
    # The full point group as integer matrices in the standard conventional basis of the detected setting
    # (never a subgroup, even for a supercell), and that basis built from the input lattice, unidealised
    # and in the input orientation: A_s = A P^-1 with A's columns the input lattice vectors.
    rotations = np.unique(np.asarray(database["rotations"], dtype=int), axis=0)
    conventional = (lattice.T @ np.linalg.inv(dataset.transformation_matrix)).T  # rows: basis vectors
    return SymmetryInfo(
        space_group_symbol=str(dataset.international),
        space_group_number=int(dataset.number),
        point_group=str(dataset.pointgroup),
        symprec=float(symprec),
        operations=_cartesian_operations(rotations, conventional),
        n_orbits=len(np.unique(dataset.equivalent_atoms)),
        standard_rotation=np.array(dataset.std_rotation_matrix, dtype=float),
        standard_lattice=np.array(dataset.std_lattice, dtype=float),
    )


def lattice_operations(lattice: np.ndarray, symprec: float = DEFAULT_SYMPREC) -> np.ndarray:
    """Orthonormal Cartesian operations of a lattice's holohedry (its point group as a point lattice).

    Parameters
    ----------
    lattice
        (3, 3) lattice, rows are lattice vectors, Angstrom.
    symprec
        spglib distance tolerance in Angstrom.

    Returns
    -------
    np.ndarray
        (n_ops, 3, 3) distinct operations, inversion included (every lattice is centrosymmetric).
    """
    lattice = np.asarray(lattice, dtype=float)
    found = _spglib_call(spglib.get_symmetry, (lattice, np.zeros((1, 3)), np.ones(1, dtype=int)), symprec=symprec)
    if found is None:
        raise ValueError(f"spglib found no lattice symmetry at symprec={symprec} A")
    return _cartesian_operations(np.unique(np.asarray(found["rotations"], dtype=int), axis=0), lattice)


def _spglib_call(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
    """Call a spglib function and turn its failures into ``ValueError``; None means "no result".

    spglib's process-global ``OLD_ERROR_HANDLING`` flag is left alone (flipping it races between
    threads): with the old handling a failure returns None (and spglib 2.7+ warns with a
    DeprecationWarning, hidden by Python's default filters); with the new handling (spglib 3, or
    ``SPGLIB_OLD_ERROR_HANDLING=0``) it raises :class:`spglib.error.SpglibError`. Both are handled here.
    """
    try:
        return function(*args, **kwargs)
    except SpglibError as exc:
        raise ValueError(f"spglib {function.__name__} failed: {exc}") from exc


def _cartesian_operations(rotations: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Integer rotations in the basis of ``lattice`` -> orthonormal Cartesian matrices."""
    lat_t = lattice.T  # (3, 3): columns are lattice vectors
    cart = lat_t[None] @ rotations.astype(float) @ np.linalg.inv(lat_t)[None]  # (G, 3, 3)
    metric = np.mean(np.transpose(cart, (0, 2, 1)) @ cart, axis=0)  # (3, 3), H = mean R^T R
    eigvals, eigvecs = np.linalg.eigh(metric)
    sqrt_h = (eigvecs * np.sqrt(eigvals)) @ eigvecs.T
    inv_sqrt_h = (eigvecs / np.sqrt(eigvals)) @ eigvecs.T
    return sqrt_h[None] @ cart @ inv_sqrt_h[None]


def point_group_operations(atoms: Any, symprec: float = DEFAULT_SYMPREC) -> np.ndarray:
    """Orthonormal Cartesian point-group operations of a crystal, shape (n_ops, 3, 3).

    The operations come from the primitive cell in the input orientation, are Weyl-orthogonalised
    and distinct. See :func:`analyze_symmetry` for the parameters.
    """
    return analyze_symmetry(atoms, symprec).operations


def reynolds_projection(tensor: Any, operations: Any, weights: Any = None, *, rank: int | None = None) -> Any:
    """Average a Cartesian tensor over a group of operations acting on every index.

    Works on NumPy arrays and torch tensors with any leading batch dimensions.

    Parameters
    ----------
    tensor
        Shape ``(*batch, 3, ..., 3)`` with ``rank`` trailing Cartesian indices.
    operations
        Shape ``(*batch_ops, G, 3, 3)``; ``batch_ops`` broadcasts with ``tensor``'s batch.
    weights
        Optional ``(*batch_ops, G)`` weights for padded batches (1 for a real operation, 0 for padding).
        Without weights every operation counts equally.
    rank
        Number of Cartesian indices of one tensor (1 to 4). If omitted, ``tensor`` must have exactly the
        batch dimensions of ``operations``: ``rank = tensor.ndim - (operations.ndim - 3)``; a (3, 3, 3)
        array with (G, 3, 3) operations is thus one rank-3 tensor. Pass ``rank`` for a batch of tensors
        sharing one set of operations (three rank-2 tensors: ``rank=2``).

    Returns
    -------
    Same type as ``tensor``
        The projected tensor, same shape.

    Raises
    ------
    ValueError
        If the shapes do not fit ``rank`` or ``rank`` is not 1 to 4.
    """
    rank = _tensor_rank(tuple(tensor.shape), tuple(operations.shape), rank)
    if type(tensor).__module__.startswith("torch"):
        rotated, expand = _rotated_copies_torch(tensor, operations, rank), (lambda x: x.unsqueeze(-1))
    else:
        tensor, operations = np.asarray(tensor), np.asarray(operations)
        rotated, expand = _rotated_copies_numpy(tensor, operations, rank), (lambda x: np.expand_dims(x, -1))
    if weights is None:
        return rotated.mean(-1 - rank)
    w = weights
    for _ in range(rank):
        w = expand(w)  # (..., G, 1, ..., 1)
    return (rotated * w).sum(-1 - rank) / w.sum(-1 - rank)


def _rotated_copies_torch(tensor: Any, operations: Any, rank: int) -> Any:
    """(..., G, 3, ..., 3): ``tensor`` rotated by each operation, one index at a time (torch einsum).

    Rotating index by index costs O(G 3^(rank+1)) instead of building a G 3^(2 rank) intermediate.
    """
    import torch

    inp, out = _INDEX_LETTERS[:rank], _OUTPUT_LETTERS[:rank]
    rotated = torch.einsum(f"...g{out[0]}{inp[0]},...{inp}->...g{out[0]}{inp[1:]}", operations, tensor)
    for k in range(1, rank):
        current, done = out[:k] + inp[k:], out[: k + 1] + inp[k + 1 :]
        rotated = torch.einsum(f"...g{out[k]}{inp[k]},...g{current}->...g{done}", operations, rotated)
    return rotated


def _rotated_copies_numpy(tensor: np.ndarray, operations: np.ndarray, rank: int) -> np.ndarray:
    """(..., G, 3, ..., 3): ``tensor`` rotated by each operation, one index at a time (NumPy matmul).

    Each step multiplies the leading Cartesian index by the operations, as a batch of (3, 3) @ (3, 3^(rank-1))
    matrix products, and then cycles that index to the end; after ``rank`` steps every index is rotated and
    back in place. NumPy's batched matmul is about three times faster here than its einsum loops.
    """
    n_ops = operations.shape[-3]
    batch = np.broadcast_shapes(tensor.shape[: tensor.ndim - rank], operations.shape[:-3])
    cartesian = (3,) * rank
    rotated = np.broadcast_to(np.expand_dims(tensor, -1 - rank), (*batch, n_ops, *cartesian))
    for _ in range(rank):
        rotated = operations @ rotated.reshape(*batch, n_ops, 3, 3 ** (rank - 1))
        rotated = np.moveaxis(rotated.reshape(*batch, n_ops, *cartesian), -rank, -1)
    return rotated


def _tensor_rank(shape: tuple[int, ...], ops_shape: tuple[int, ...], rank: int | None) -> int:
    """Check the shapes of :func:`reynolds_projection`'s arguments and return the tensor rank."""
    if len(ops_shape) < 3 or ops_shape[-2:] != (3, 3):
        raise ValueError(f"operations must have shape (..., G, 3, 3), got {ops_shape}")
    ops_batch = ops_shape[:-3]
    if rank is None:
        rank = len(shape) - len(ops_batch)
        if shape[: len(shape) - rank] != ops_batch:
            raise ValueError(
                f"tensor shape {shape} and operations shape {ops_shape} have different batch dimensions: "
                "pass rank= explicitly"
            )
    if not 1 <= rank <= min(_MAX_RANK, len(shape)):
        raise ValueError(f"rank must be 1 to {_MAX_RANK} and at most the tensor's ndim, got {rank} for {shape}")
    if any(n != 3 for n in shape[len(shape) - rank :]):
        raise ValueError(f"tensor shape {shape} does not end in {rank} Cartesian (3) indices")
    return rank


def symmetrize(tensor: np.ndarray, atoms: Any, symprec: float = DEFAULT_SYMPREC) -> np.ndarray:
    """Project a full Cartesian tensor onto the crystal's point group (Reynolds projection).

    Parameters
    ----------
    tensor
        Cartesian tensor of rank 1 to 4, shape ``(3,) * rank``, in the frame of ``atoms``.
    atoms
        ASE ``Atoms`` or pymatgen ``Structure``.
    symprec
        spglib distance tolerance in Angstrom.

    Returns
    -------
    numpy.ndarray
        The closest tensor (in the Frobenius norm) that is invariant under the point group.
    """
    array = np.asarray(tensor, dtype=float)
    if array.ndim not in (1, 2, 3, 4) or any(n != 3 for n in array.shape):
        raise ValueError(f"expected a full Cartesian tensor of shape (3,)*rank, got {array.shape}")
    return reynolds_projection(array, point_group_operations(atoms, symprec), rank=array.ndim)
