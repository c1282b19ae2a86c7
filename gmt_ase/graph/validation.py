"""Input checks: every structure is validated before the model sees it, and a bad one gets a specific error.

Each check is one small function raising a subclass of :class:`InvalidStructureError` (itself a
``ValueError``); :func:`validate_structure` runs them all in a fixed order, cheapest and most basic first,
so that later checks can rely on earlier ones (the distance check needs a finite, non-degenerate cell).

The limits are physical sanity bounds, not model-specific ones; the supported elements come from the
checkpoint (``TensorPredictor.species``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from gmt_ase.core.symmetry import degenerate_cell_reason
from gmt_ase.graph.neighbors import NeighborEdges, neighbor_list

__all__ = [
    "MAX_ATOMS",
    "MAX_VOLUME_PER_ATOM",
    "MIN_DISTANCE",
    "MIN_VOLUME_PER_ATOM",
    "AtomsTooCloseError",
    "DegenerateCellError",
    "DisorderedStructureError",
    "EmptyStructureError",
    "InvalidStructureError",
    "NonFiniteError",
    "NonPeriodicError",
    "StructureSizeError",
    "UnsupportedElementError",
    "as_atoms",
    "check_cell",
    "check_finite",
    "check_min_distance",
    "check_not_empty",
    "check_ordered",
    "check_periodic",
    "check_size",
    "check_species",
    "check_volume_per_atom",
    "validate_structure",
]

#: Closest allowed interatomic distance in Angstrom (shortest real bond, H2, is 0.74 A).
MIN_DISTANCE = 0.5
#: Largest structure accepted.
MAX_ATOMS = 5000
#: Allowed range of cell volume per atom in A^3 (dense solids ~5-60 A^3; 1000 A^3 is mostly vacuum).
MIN_VOLUME_PER_ATOM = 1.0
MAX_VOLUME_PER_ATOM = 1000.0


class InvalidStructureError(ValueError):
    """A structure the model cannot (or must not) predict for."""


class EmptyStructureError(InvalidStructureError):
    """The structure has no atoms."""


class NonFiniteError(InvalidStructureError):
    """The cell or the positions contain NaN or infinite values."""


class NonPeriodicError(InvalidStructureError):
    """The structure is not periodic in all three directions."""


class DegenerateCellError(InvalidStructureError):
    """The cell has a zero-length vector or (nearly) zero volume."""


class StructureSizeError(InvalidStructureError):
    """Too many atoms, or a volume per atom outside the physical range."""


class UnsupportedElementError(InvalidStructureError):
    """An atomic number is unknown or not among the elements the model was trained on."""


class AtomsTooCloseError(InvalidStructureError):
    """Two atoms (or an atom and its own periodic image) are closer than :data:`MIN_DISTANCE`."""


class DisorderedStructureError(InvalidStructureError):
    """A site is shared by several species or partly vacant (partial occupancy, e.g. from a CIF)."""


#: Occupancies within this of 1 count as full.
_OCCUPANCY_TOL = 1e-3
_ORDER_HINT = (
    "gmt_ase predicts ordered crystals only and never picks one species for you: use an ordered model "
    "(e.g. a supercell from pymatgen's OrderDisorderedStructureTransformation)"
)


def _disorder_error(site: str, frac: Any, occupancy: dict[str, float]) -> DisorderedStructureError:
    occ = " + ".join(f"{name} {float(value):.4g}" for name, value in occupancy.items())
    where = ", ".join(f"{float(x):.4g}" for x in np.asarray(frac, dtype=float))
    return DisorderedStructureError(
        f"disordered structure: {site} at fractional ({where}) has partial occupancy {occ}; {_ORDER_HINT}"
    )


def _is_full(occupancy: dict[str, float]) -> bool:
    return len(occupancy) == 1 and abs(float(next(iter(occupancy.values()))) - 1.0) <= _OCCUPANCY_TOL


def _check_occupancy_info(occupancy: Any, frac: np.ndarray, kinds: np.ndarray | None) -> None:
    """Check an ASE/pymatgen ``occupancy`` mapping {site kind: {symbol: occupancy}} from a CIF reader."""
    if not isinstance(occupancy, dict):
        return
    for kind, species in occupancy.items():
        if isinstance(species, dict) and not _is_full(species):
            atoms_of_kind = np.flatnonzero(kinds == int(kind)) if kinds is not None else np.array([], int)
            first = int(atoms_of_kind[0]) if atoms_of_kind.size else None
            site = f"CIF site {kind}" + (f" (atom {first})" if first is not None else "")
            error = _disorder_error(site, frac[first] if first is not None else [np.nan] * 3, species)
            raise DisorderedStructureError(
                f"{error} (after ordering it yourself, delete the stale info['occupancy'] of the Atoms)"
            )


def check_ordered(structure: Any) -> None:
    """Raise :class:`DisorderedStructureError` naming the first site with a partial occupancy.

    A pymatgen ``Structure`` is disordered when a site holds several species or less than one atom; ASE's
    CIF reader keeps one species per site and records the occupancies in ``atoms.info["occupancy"]``
    (kept through pymatgen's ``AseAtomsAdaptor`` as ``structure.properties["occupancy"]``), which is read
    here so that a disordered CIF is refused rather than silently reduced to one of its species.
    """
    if isinstance(structure, Atoms):
        kinds = structure.arrays.get("spacegroup_kinds")
        _check_occupancy_info(structure.info.get("occupancy"), structure.get_scaled_positions(wrap=False), kinds)
        return
    if hasattr(structure, "sites") and hasattr(structure, "frac_coords"):
        for index, site in enumerate(structure.sites):
            occupancy = {str(sp): float(amount) for sp, amount in site.species.items()}
            if not _is_full(occupancy):
                raise _disorder_error(f"site {index}", site.frac_coords, occupancy)
        properties = getattr(structure, "properties", None) or {}
        _check_occupancy_info(properties.get("occupancy"), np.asarray(structure.frac_coords), None)


def as_atoms(structure: Any) -> Atoms:
    """Return an ASE ``Atoms`` for an ``Atoms`` or a pymatgen ``Structure`` (never mutating the input).

    Raises
    ------
    DisorderedStructureError
        For a disordered (partially occupied) ``Structure``.
    TypeError
        For any other object.

    """
    if isinstance(structure, Atoms):
        return structure
    if hasattr(structure, "lattice") and hasattr(structure, "frac_coords"):
        check_ordered(structure)
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_atoms(structure)
    raise TypeError(f"expected ase.Atoms or pymatgen Structure, got {type(structure).__name__}")


def _symbol(z: int) -> str:
    return chemical_symbols[z] if 0 < z < len(chemical_symbols) else "?"


def check_not_empty(atoms: Atoms) -> None:
    """Raise :class:`EmptyStructureError` if ``atoms`` has no atoms."""
    if len(atoms) == 0:
        raise EmptyStructureError("structure is empty: it has no atoms")


def check_finite(atoms: Atoms) -> None:
    """Raise :class:`NonFiniteError` if the cell or any position is NaN or infinite."""
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.all(np.isfinite(cell)):
        raise NonFiniteError("cell contains NaN or infinite values")
    bad = np.flatnonzero(~np.all(np.isfinite(atoms.positions), axis=1))
    if bad.size:
        raise NonFiniteError(
            f"positions of {bad.size} atom(s) contain NaN or infinite values (first: atom {bad[0]})"
        )


def check_periodic(atoms: Atoms) -> None:
    """Raise :class:`NonPeriodicError` unless ``atoms.pbc`` is True in all three directions."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.all():
        raise NonPeriodicError(
            f"structure must be periodic in all three directions (a bulk crystal), got pbc={pbc.tolist()}"
        )


def check_cell(atoms: Atoms) -> None:
    """Raise :class:`DegenerateCellError` for a zero-length lattice vector or a (nearly) flat cell."""
    reason = degenerate_cell_reason(np.asarray(atoms.cell[:], dtype=float))
    if reason is not None:
        raise DegenerateCellError(reason)


def check_size(atoms: Atoms, max_atoms: int = MAX_ATOMS) -> None:
    """Raise :class:`StructureSizeError` if the structure has more than ``max_atoms`` atoms."""
    if len(atoms) > max_atoms:
        raise StructureSizeError(f"structure has {len(atoms)} atoms; at most {max_atoms} are supported")


def check_volume_per_atom(
    atoms: Atoms, bounds: tuple[float, float] = (MIN_VOLUME_PER_ATOM, MAX_VOLUME_PER_ATOM)
) -> None:
    """Raise :class:`StructureSizeError` if the cell volume per atom lies outside ``bounds`` (A^3)."""
    per_atom = abs(float(atoms.cell.volume)) / len(atoms)
    low, high = bounds
    if per_atom < low:
        raise StructureSizeError(
            f"volume per atom is {per_atom:.3g} A^3, below the physical minimum of {low} A^3 "
            "(wrong units, or a cell that is too small for its atoms?)"
        )
    if per_atom > high:
        raise StructureSizeError(
            f"volume per atom is {per_atom:.4g} A^3, above {high} A^3: this is mostly vacuum "
            "(a molecule or slab in a box?), not a bulk crystal"
        )


def check_species(atoms: Atoms, species: Collection[int], model_name: str = "model") -> None:
    """Raise :class:`UnsupportedElementError` naming every element the model was not trained on."""
    present = sorted({int(z) for z in atoms.numbers})
    unknown = [z for z in present if not 0 < z < len(chemical_symbols)]
    if unknown:
        raise UnsupportedElementError(f"unknown atomic number(s) {unknown}: not a chemical element")
    missing = [z for z in present if z not in species]
    if missing:
        names = ", ".join(f"{_symbol(z)} (Z={z})" for z in missing)
        noun = "element" if len(missing) == 1 else "elements"
        verb = "is" if len(missing) == 1 else "are"
        raise UnsupportedElementError(
            f"{noun} {names} {verb} not supported by model '{model_name}' "
            f"(trained on {len(species)} elements)"
        )


def check_min_distance(
    atoms: Atoms, min_distance: float = MIN_DISTANCE, edges: NeighborEdges | None = None
) -> None:
    """Raise :class:`AtomsTooCloseError` naming the closest pair if any distance is below ``min_distance``.

    Periodic images count: an atom closer than ``min_distance`` to its own image (a too-small cell) is
    reported too. ``edges``, the crystal's neighbour list if it has one already (built within at least
    ``min_distance``), saves a second one.
    """
    if edges is not None and edges.cutoff >= min_distance:
        (first, second), vec = edges.within(min_distance)
    else:
        (first, second), vec = neighbor_list(atoms.positions, atoms.cell[:], min_distance)
    dist = np.linalg.norm(vec, axis=1)
    if dist.size == 0:
        return
    k = int(np.argmin(dist))
    i, j, d = int(first[k]), int(second[k]), float(dist[k])
    symbols = atoms.get_chemical_symbols()
    if i == j:
        what = f"atom {i} ({symbols[i]}) is {d:.3g} A from its own periodic image"
    else:
        i, j = min(i, j), max(i, j)
        what = f"atoms {i} ({symbols[i]}) and {j} ({symbols[j]}) are {d:.3g} A apart"
    raise AtomsTooCloseError(f"{what}; the physical minimum is {min_distance} A (duplicated atom?)")


def validate_structure(
    structure: Any,
    species: Collection[int],
    *,
    model_name: str = "model",
    min_distance: float = MIN_DISTANCE,
    max_atoms: int = MAX_ATOMS,
    volume_per_atom: tuple[float, float] = (MIN_VOLUME_PER_ATOM, MAX_VOLUME_PER_ATOM),
    check_distances: bool = True,
) -> Atoms:
    """Run every check on one structure and return it as ASE ``Atoms``.

    Parameters
    ----------
    structure
        ASE ``Atoms`` or pymatgen ``Structure``. It is not modified.
    species
        Atomic numbers the model supports.
    model_name
        Model name used in error messages.
    min_distance
        Smallest allowed interatomic distance in Angstrom.
    max_atoms
        Largest allowed number of atoms.
    volume_per_atom
        Allowed (min, max) cell volume per atom in A^3.
    check_distances
        Run :func:`check_min_distance` last (default). ``False`` leaves it to a caller that builds the
        crystal's neighbour list anyway (:func:`gmt_ase.graph.crystal.prepare_crystal`).

    Returns
    -------
    ase.Atoms
        The structure as ``Atoms`` (the input object itself when it already is one).

    Raises
    ------
    InvalidStructureError
        The specific subclass of the first failed check (:class:`DisorderedStructureError` for a partial
        occupancy, from a pymatgen ``Structure`` or an ASE-read CIF).
    TypeError
        If ``structure`` is neither ``Atoms`` nor ``Structure``.

    """
    atoms = as_atoms(structure)
    check_not_empty(atoms)
    check_finite(atoms)
    check_periodic(atoms)
    check_cell(atoms)
    check_ordered(atoms)
    check_size(atoms, max_atoms)
    check_volume_per_atom(atoms, volume_per_atom)
    check_species(atoms, species, model_name)
    if check_distances:
        check_min_distance(atoms, min_distance)
    return atoms
