"""Quality filters of the training data: which records to drop, and the log of what was dropped.

:func:`drop_reason` drops records with non-finite tensors or structures, records whose source reports a
``frame_check.sym_residual`` above :data:`FRAME_RESIDUAL_MAX`, and records with a tensor whose relative
residual against the point group found at the loose tolerance :data:`LOOSE_SYMPREC` exceeds
:data:`LOOSE_RESIDUAL_MAX` (see :func:`frame_consistency`). :mod:`gmt_ase.training.data` applies it while loading
and logs the dropped records in a :class:`DropReport`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gmt_ase.core.symmetry import analyze_symmetry, reynolds_projection

__all__ = [
    "FRAME_RESIDUAL_MAX",
    "LOOSE_SYMPREC",
    "LOOSE_RESIDUAL_MAX",
    "DropReport",
    "frame_consistency",
    "drop_reason",
]

FRAME_RESIDUAL_MAX = 5e-2
LOOSE_SYMPREC = 0.1
LOOSE_RESIDUAL_MAX = 0.05


@dataclass
class DropReport:
    """Every record dropped while loading, as ``(source, material_id, reason)``."""

    dropped: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, source: str, material_id: str, reason: str) -> None:
        """Log one dropped record."""
        self.dropped.append((source, material_id, reason))

    def summary(self) -> dict[tuple[str, str], int]:
        """Count the dropped records per ``(source, reason)``."""
        return dict(Counter((source, reason) for source, _, reason in self.dropped))


def _relative_residual(tensor: np.ndarray, operations: np.ndarray) -> float:
    norm = float(np.linalg.norm(tensor))
    if norm == 0.0:
        return 0.0
    return float(np.linalg.norm(reynolds_projection(tensor, operations) - tensor)) / norm


def frame_consistency(structure: Any, tensor: np.ndarray, symprec: float = LOOSE_SYMPREC) -> float:
    """Relative residual ``||P(T) - T||_F / ||T||_F`` of a tensor against a crystal's point group.

    Parameters
    ----------
    structure
        pymatgen ``Structure`` or ASE ``Atoms`` in the frame of ``tensor``.
    tensor
        Full Cartesian tensor of rank 1 to 4.
    symprec
        spglib tolerance in Angstrom; the loose default finds pseudo-symmetries that a tensor in the
        wrong frame violates even when the tight-tolerance group is trivial.

    Returns
    -------
    float
        0 for a symmetric (or zero) tensor; above :data:`LOOSE_RESIDUAL_MAX` flags a frame mismatch.

    """
    operations = analyze_symmetry(structure, symprec).operations
    return _relative_residual(np.asarray(tensor, dtype=float), operations)


def _loose_check_tensors(targets: dict[str, np.ndarray]) -> list[np.ndarray]:
    tensors = {name: value for name, value in targets.items() if value.ndim >= 2}
    if "dielectric_ionic" in tensors and "dielectric_electronic" in tensors:
        # The ionic part alone may break a loose-tolerance pseudo-symmetry for physical reasons (soft polar
        # modes of a slightly distorted cell); a frame error shows in the total.
        tensors["dielectric_ionic"] = tensors["dielectric_ionic"] + tensors["dielectric_electronic"]
    return list(tensors.values())


def drop_reason(targets: dict[str, np.ndarray], structure: Any, sym_residual: float | None = None) -> str | None:
    """Why a record must be dropped, or None to keep it.

    Parameters
    ----------
    targets
        The record's float64 Cartesian tensors and scalars, keyed by target name.
    structure
        The record's pymatgen ``Structure``, in the frame of the tensors.
    sym_residual
        The source's own ``frame_check.sym_residual``, if it reports one.

    Returns
    -------
    str or None
        ``"non-finite tensor"``, ``"non-finite structure"``, ``"frame residual"``,
        ``"symmetry analysis failed: ..."`` or ``"loose-symprec residual"``; None if the record passes.

    """
    if not all(np.all(np.isfinite(value)) for value in targets.values()):
        return "non-finite tensor"
    if not (np.all(np.isfinite(structure.lattice.matrix)) and np.all(np.isfinite(structure.frac_coords))):
        return "non-finite structure"
    if sym_residual is not None and not sym_residual <= FRAME_RESIDUAL_MAX:
        return "frame residual"
    tensors = _loose_check_tensors(targets)
    if not tensors:
        return None
    try:
        operations = analyze_symmetry(structure, LOOSE_SYMPREC).operations
    except (ValueError, TypeError, RuntimeError) as exc:
        return f"symmetry analysis failed: {exc}"
    if max(_relative_residual(tensor, operations) for tensor in tensors) > LOOSE_RESIDUAL_MAX:
        return "loose-symprec residual"
    return None
