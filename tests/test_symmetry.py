"""Physics tests of the shared symmetry projector :mod:`gmt_ase.core.symmetry`.

The oracles are independent of the implementation: group axioms, the structure being mapped onto
itself by every operation, textbook numbers of independent tensor components per point group
(Nye, *Physical Properties of Crystals*), and invariances that any correct projector must have.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import spglib
from ase import Atoms
from ase.build import make_supercell
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.groups import SpaceGroup

from gmt_ase.core.symmetry import (
    analyze_symmetry,
    cell_arrays,
    point_group_operations,
    reynolds_projection,
    symmetrize,
)
from gmt_ase.testing import random_orthogonal, transform_atoms
from gmt_ase.testing import rotate_tensor as transform

NOISE = 1e-3  # Angstrom, Gaussian noise on every position
RANKS = (2, 3, 4)

#: fixture name -> point-group order
STRUCTURES = {
    "rutile": 16,
    "rutile_supercell": 16,  # 2x1x1: a naive spglib call sees only 8 of the 16 rotations
    "wurtzite_zno": 12,
    "alpha_quartz": 6,
    "monoclinic_zro2": 4,
    "triclinic": 2,
    "nacl": 48,
    "silicon": 48,
}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def rattle(atoms: Atoms, stdev: float, seed: int = 0) -> Atoms:
    """Copy of ``atoms`` with Gaussian noise of ``stdev`` Angstrom on every cell vector and position.

    Noise on the cell matters: with an exact cell the detected operations are exactly orthogonal and
    the Weyl orthogonalisation is never exercised.
    """
    rng = np.random.default_rng(seed)
    noisy = atoms.copy()
    noisy.set_cell(noisy.cell[:] + rng.normal(scale=stdev, size=(3, 3)), scale_atoms=True)
    noisy.positions += rng.normal(scale=stdev, size=noisy.positions.shape)
    return noisy


def random_tensor(rank: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3,) * rank)


def structure(request: pytest.FixtureRequest, name: str, noise: float) -> Atoms:
    atoms = request.getfixturevalue(name)
    return rattle(atoms, noise) if noise else atoms


def maps_onto_itself(atoms: Atoms, rot: np.ndarray, tol: float) -> bool:
    """True if some translation t makes ``{rot @ r_i + t}`` equal the crystal (same species)."""
    cart = atoms.positions @ rot.T
    inv_cell = np.linalg.inv(atoms.cell[:])
    numbers = atoms.numbers
    for j in np.flatnonzero(numbers == numbers[0]):
        shift = atoms.positions[j] - cart[0]
        frac = (cart + shift) @ inv_cell  # images in fractional coordinates of the original cell
        diff = frac[:, None, :] - atoms.get_scaled_positions()[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ atoms.cell[:], axis=-1)  # (n, n) Angstrom
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        if np.all(dist.min(axis=1) < tol):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# the operations
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, NOISE], ids=["ideal", "noisy"])
@pytest.mark.parametrize("name", STRUCTURES)
def test_operations_form_the_point_group(request, name, noise):
    ops = point_group_operations(structure(request, name, noise))
    n = len(ops)
    assert n == STRUCTURES[name]
    np.testing.assert_allclose(ops @ ops.transpose(0, 2, 1), np.broadcast_to(np.eye(3), ops.shape), atol=1e-12)
    assert np.min(np.linalg.norm(ops - np.eye(3), axis=(1, 2))) < 1e-12  # identity present
    pair_dist = np.linalg.norm(ops[:, None] - ops[None, :], axis=(2, 3)) + 10 * np.eye(n)
    assert pair_dist.min() > 0.5  # distinct
    products = np.einsum("gij,hjk->ghik", ops, ops).reshape(-1, 1, 3, 3)
    closest = np.linalg.norm(products - ops[None], axis=(2, 3)).min(axis=1)
    assert closest.max() < 1e-10  # closed under multiplication


@pytest.mark.parametrize("noise", [0.0, NOISE], ids=["ideal", "noisy"])
@pytest.mark.parametrize("name", STRUCTURES)
def test_every_operation_maps_the_crystal_onto_itself(request, name, noise):
    atoms = structure(request, name, noise)
    ops = point_group_operations(atoms)
    tol = 1e-6 if noise == 0 else 10 * NOISE
    assert all(maps_onto_itself(atoms, rot, tol) for rot in ops)
    # ...and something that is not an operation does not (guards the check itself)
    assert not maps_onto_itself(atoms, random_orthogonal(5, proper=True), 0.1)


@pytest.mark.parametrize("name", STRUCTURES)
def test_noisy_operations_match_ideal_ones(request, name):
    atoms = request.getfixturevalue(name)
    ideal = point_group_operations(atoms)
    noisy = point_group_operations(rattle(atoms, NOISE, seed=3))
    assert len(noisy) == len(ideal)
    dist = np.linalg.norm(noisy[:, None] - ideal[None], axis=(2, 3))  # (G, G)
    assert dist.min(axis=1).max() < 3e-3
    assert sorted(dist.argmin(axis=1).tolist()) == list(range(len(ideal)))  # one-to-one


def test_supercell_sees_the_full_group(rutile, rutile_supercell):
    ops = point_group_operations(rutile)
    ops_super = point_group_operations(rutile_supercell)
    assert len(ops_super) == 16
    dist = np.linalg.norm(ops_super[:, None] - ops[None], axis=(2, 3))
    assert dist.min(axis=1).max() < 1e-12


def test_atoms_and_structure_give_the_same_operations(alpha_quartz):
    from_atoms = analyze_symmetry(alpha_quartz)
    from_structure = analyze_symmetry(AseAtomsAdaptor.get_structure(alpha_quartz))
    assert from_atoms.as_dict() == from_structure.as_dict()
    np.testing.assert_allclose(from_structure.operations, from_atoms.operations, atol=1e-12)


def test_symmetry_info_reports_groups_and_symprec(rutile):
    info = analyze_symmetry(rutile, symprec=1e-3).as_dict()
    assert info == {
        "space_group_symbol": "P4_2/mnm",
        "space_group_number": 136,
        "point_group": "4/mmm",
        "symprec": 1e-3,
        "n_operations": 16,
    }


# --------------------------------------------------------------------------------------------------
# the projector: algebraic properties and invariances
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, NOISE], ids=["ideal", "noisy"])
@pytest.mark.parametrize("name", STRUCTURES)
def test_projector_is_an_orthogonal_projection(request, name, noise):
    ops = point_group_operations(structure(request, name, noise))
    for rank in RANKS:
        a, b = random_tensor(rank, 1), random_tensor(rank, 2)
        pa, pb = reynolds_projection(a, ops), reynolds_projection(b, ops)
        np.testing.assert_allclose(reynolds_projection(pa, ops), pa, atol=1e-12, err_msg="idempotent")
        assert np.sum(pa * b) == pytest.approx(np.sum(a * pb), abs=1e-12), "self-adjoint"
        for rot in ops:  # the result is invariant under every operation
            np.testing.assert_allclose(transform(pa, rot), pa, atol=1e-12, err_msg="invariant")


@pytest.mark.parametrize("proper", [True, False], ids=["rotation", "rotoreflection"])
@pytest.mark.parametrize("noise", [0.0, NOISE], ids=["ideal", "noisy"])
@pytest.mark.parametrize("name", STRUCTURES)
def test_projector_is_o3_equivariant(request, name, noise, proper):
    atoms = structure(request, name, noise)
    q = random_orthogonal(11, proper)
    ops, ops_moved = point_group_operations(atoms), point_group_operations(transform_atoms(atoms, q))
    for rank in RANKS:  # P_Q(Q.T) == Q.P(T)
        tensor = random_tensor(rank)
        moved = reynolds_projection(transform(tensor, q), ops_moved)
        expected = transform(reynolds_projection(tensor, ops), q)
        np.testing.assert_allclose(moved, expected, atol=1e-10, err_msg=f"rank {rank}")


def _supercell(atoms: Atoms) -> Atoms:
    return make_supercell(atoms, [[1, 1, 0], [-1, 1, 0], [0, 0, 1]])


def _sheared(atoms: Atoms) -> Atoms:
    """Same crystal, same Cartesian frame, another primitive cell (integer unimodular change)."""
    sheared = atoms.copy()
    sheared.set_cell(np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]]) @ atoms.cell[:], scale_atoms=False)
    sheared.wrap()
    return sheared


def _permuted(atoms: Atoms) -> Atoms:
    return atoms[np.random.default_rng(4).permutation(len(atoms))]


def _pymatgen_primitive(atoms: Atoms) -> Structure:
    """pymatgen's own primitive cell of a supercell (keeps the Cartesian frame)."""
    return AseAtomsAdaptor.get_structure(_supercell(atoms)).get_primitive_structure()


@pytest.mark.parametrize("noise", [0.0, NOISE], ids=["ideal", "noisy"])
@pytest.mark.parametrize("name", STRUCTURES)
@pytest.mark.parametrize("change", [_supercell, _sheared, _permuted, _pymatgen_primitive])
def test_projection_does_not_depend_on_the_cell_description(request, name, noise, change):
    atoms = structure(request, name, noise)
    ops, ops_other = point_group_operations(atoms), point_group_operations(change(atoms))
    for rank in RANKS:
        tensor = random_tensor(rank)
        np.testing.assert_allclose(
            reynolds_projection(tensor, ops_other),
            reynolds_projection(tensor, ops),
            atol=1e-10,
            err_msg=f"rank {rank}",
        )


def test_primitive_and_conventional_cubic_cells_agree(nacl, nacl_conventional):
    tensor = random_tensor(4)
    np.testing.assert_allclose(symmetrize(tensor, nacl_conventional), symmetrize(tensor, nacl), atol=1e-12)


@pytest.mark.parametrize("rank", RANKS)
def test_projection_never_moves_away_from_a_symmetric_truth(monoclinic_zro2, rank):
    ops = point_group_operations(monoclinic_zro2)
    truth = reynolds_projection(random_tensor(rank, 7), ops)
    noisy_estimate = truth + 0.3 * random_tensor(rank, 8)
    projected = symmetrize(noisy_estimate, monoclinic_zro2)
    assert np.linalg.norm(projected - truth) < np.linalg.norm(noisy_estimate - truth)


def test_batched_torch_projection_with_padding_matches_numpy(wurtzite_zno, rutile):
    torch = pytest.importorskip("torch")
    ops_a, ops_b = point_group_operations(wurtzite_zno), point_group_operations(rutile)  # 12, 16 ops
    padded = np.zeros((2, 16, 3, 3))
    padded[0, :12], padded[1] = ops_a, ops_b
    padded[0, 12:] = 7.0 * np.eye(3)  # garbage that the zero weights must switch off
    weights = np.array([[1.0] * 12 + [0.0] * 4, [1.0] * 16])
    tensors = np.stack([random_tensor(3, 1), random_tensor(3, 2)])  # (2, 3, 3, 3)
    out = reynolds_projection(torch.as_tensor(tensors), torch.as_tensor(padded), weights=torch.as_tensor(weights))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 3, 3)
    np.testing.assert_allclose(out.numpy()[0], reynolds_projection(tensors[0], ops_a), atol=1e-12)
    np.testing.assert_allclose(out.numpy()[1], reynolds_projection(tensors[1], ops_b), atol=1e-12)


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize(
    ("tensor_batch", "ops_batch"), [((), ()), ((5,), ()), ((), (4,)), ((4,), (4,)), ((2, 4), (4,))]
)
def test_numpy_and_torch_projections_agree_for_every_batch_layout(rank, tensor_batch, ops_batch):
    """The NumPy path (batched matmuls, index cycling) and the torch path (einsum, index by index) are two
    implementations of one projection: they agree in float64 for shared, per-crystal and broadcast
    operations, with and without weights."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(rank)
    ops = np.linalg.qr(rng.normal(size=(*ops_batch, 6, 3, 3)))[0]  # orthogonal, not a group: any map works
    tensor = rng.normal(size=(*tensor_batch, *(3,) * rank))
    weights = rng.random((*ops_batch, 6))
    for w in (None, weights):
        expected = reynolds_projection(
            torch.as_tensor(tensor), torch.as_tensor(ops), None if w is None else torch.as_tensor(w), rank=rank
        ).numpy()
        projected = reynolds_projection(tensor, ops, w, rank=rank)
        assert projected.shape == np.broadcast_shapes(tensor_batch, ops_batch) + (3,) * rank
        np.testing.assert_allclose(projected, expected, rtol=0, atol=1e-13)


def test_batch_of_rank2_tensors_with_shared_operations_needs_and_uses_rank(rutile):
    # Three rank-2 tensors stacked as (3, 3, 3) look exactly like one rank-3 tensor: only ``rank`` tells.
    ops = point_group_operations(rutile)
    batch = random_tensor(3, 5)  # (3, 3, 3): three (3, 3) tensors
    projected = reynolds_projection(batch, ops, rank=2)
    for k in range(3):
        np.testing.assert_allclose(projected[k], reynolds_projection(batch[k], ops), atol=1e-14)
    as_rank3 = reynolds_projection(batch, ops)  # no rank: the tensor has the operations' batch (none)
    assert np.abs(as_rank3 - projected).max() > 1e-2
    np.testing.assert_allclose(as_rank3, reynolds_projection(batch, ops, rank=3), atol=0)


def test_projection_shape_errors(rutile):
    ops = point_group_operations(rutile)
    with pytest.raises(ValueError, match="rank="):
        reynolds_projection(np.zeros((2, 3, 3)), ops[None])  # batch (2,) vs operations' batch (1,)
    with pytest.raises(ValueError, match="Cartesian"):
        reynolds_projection(np.zeros((3, 6)), ops)
    with pytest.raises(ValueError, match="rank must be"):
        reynolds_projection(np.zeros((3,) * 5), ops)
    with pytest.raises(ValueError, match="operations"):
        reynolds_projection(np.zeros((3, 3)), np.zeros((3, 3)))
    # Explicit rank: a batch broadcasts against unbatched operations (padding weights included).
    out = reynolds_projection(np.ones((4, 3, 3)), ops, np.ones(len(ops)), rank=2)
    assert out.shape == (4, 3, 3)


# --------------------------------------------------------------------------------------------------
# spglib's error handling: no process-global state is touched, failures are clear ValueErrors
# --------------------------------------------------------------------------------------------------
def test_spglib_global_error_flag_is_never_changed(rutile, monkeypatch):
    seen = []
    original = spglib.get_symmetry_dataset

    def spy(*args, **kwargs):
        seen.append(spglib.error.OLD_ERROR_HANDLING)
        return original(*args, **kwargs)

    monkeypatch.setattr(spglib.error, "OLD_ERROR_HANDLING", True)
    monkeypatch.setattr(spglib, "get_symmetry_dataset", spy)
    assert analyze_symmetry(rutile).point_group == "4/mmm"
    assert seen == [True] and spglib.error.OLD_ERROR_HANDLING is True


@pytest.mark.parametrize("old_handling", ["1", "0"], ids=["returns-None", "raises"])
def test_spglib_failure_is_a_clear_value_error(monkeypatch, old_handling):
    monkeypatch.setenv("SPGLIB_OLD_ERROR_HANDLING", old_handling)  # spglib's own, per-process switch
    too_close = Atoms("H2", positions=[[0, 0, 0], [1e-6, 0, 0]], cell=np.eye(3) * 3, pbc=True)
    with pytest.raises(ValueError, match="spglib"):
        analyze_symmetry(too_close)


def test_spglib_database_failure_is_a_clear_value_error(rutile, monkeypatch):
    monkeypatch.setattr(spglib, "get_symmetry_from_database", lambda hall_number: None)
    with pytest.raises(ValueError, match="Hall number"):
        analyze_symmetry(rutile)


# --------------------------------------------------------------------------------------------------
# number of independent components per point group (Nye's tables)
# --------------------------------------------------------------------------------------------------
#: point group -> (space groups to generate it from, independent dielectric, piezo e_iJ, elastic C_IJ)
POINT_GROUPS: dict[str, tuple[tuple[str, ...], int, int, int]] = {
    "1": (("P1",), 6, 18, 21),
    "-1": (("P-1",), 6, 0, 21),
    "2": (("P2", "C2"), 4, 8, 13),
    "m": (("Pm", "Cc"), 4, 10, 13),
    "2/m": (("P2/m", "C2/c"), 4, 0, 13),
    "222": (("P222", "I2_12_12_1"), 3, 3, 9),
    "mm2": (("Pmm2", "Cmc2_1"), 3, 5, 9),
    "mmm": (("Pmmm", "Pnma"), 3, 0, 9),
    "4": (("P4", "I4_1"), 2, 4, 7),
    "-4": (("P-4", "I-4"), 2, 4, 7),
    "4/m": (("P4/m", "I4_1/a"), 2, 0, 7),
    "422": (("P422", "P4_32_12"), 2, 1, 6),
    "4mm": (("P4mm", "I4cm"), 2, 3, 6),
    "-42m": (("P-42m", "I-42d"), 2, 2, 6),
    "4/mmm": (("P4/mmm", "I4_1/amd"), 2, 0, 6),
    "3": (("P3", "R3"), 2, 6, 7),
    "-3": (("P-3", "R-3"), 2, 0, 7),
    "32": (("P321", "P312", "R32"), 2, 2, 6),
    "3m": (("P3m1", "R3c"), 2, 4, 6),
    "-3m": (("P-3m1", "R-3m"), 2, 0, 6),
    "6": (("P6", "P6_3"), 2, 4, 5),
    "-6": (("P-6",), 2, 2, 5),
    "6/m": (("P6/m", "P6_3/m"), 2, 0, 5),
    "622": (("P622", "P6_122"), 2, 1, 5),
    "6mm": (("P6mm", "P6_3mc"), 2, 3, 5),
    "-6m2": (("P-6m2", "P-62c"), 2, 1, 5),
    "6/mmm": (("P6/mmm", "P6_3/mmc"), 2, 0, 5),
    "23": (("P23", "I2_13"), 1, 1, 3),
    "m-3": (("Pm-3", "Ia-3"), 1, 0, 3),
    "432": (("P432", "P4_132"), 1, 0, 3),
    "-43m": (("P-43m", "I-43d"), 1, 1, 3),
    "m-3m": (("Pm-3m", "Pn-3m"), 1, 0, 3),
}
GENERATED = [(pg, sg) for pg, (groups, *_) in POINT_GROUPS.items() for sg in groups]

#: index permutations under which each target is symmetric
INDEX_SYMMETRY = {
    "dielectric": [(0, 1), (1, 0)],
    "piezoelectric": [(0, 1, 2), (0, 2, 1)],
    "elastic": [p + q for p, q in itertools.product([(0, 1), (1, 0)], [(2, 3), (3, 2)])]
    + [p + q for p, q in itertools.product([(2, 3), (3, 2)], [(0, 1), (1, 0)])],
}


def _conventional_lattice(number: int) -> Lattice:
    if number <= 2:
        return Lattice.from_parameters(5.1, 6.2, 7.3, 81.0, 97.0, 103.0)
    if number <= 15:
        return Lattice.monoclinic(5.1, 6.2, 7.3, 101.0)
    if number <= 74:
        return Lattice.orthorhombic(5.1, 6.2, 7.3)
    if number <= 142:
        return Lattice.tetragonal(5.1, 7.3)
    if number <= 194:
        return Lattice.hexagonal(5.1, 7.3)  # rhombohedral groups in the hexagonal setting
    return Lattice.cubic(6.1)


@functools.cache
def generated_operations(space_group: str) -> tuple[str, np.ndarray]:
    """Point group and operations of a generic crystal of ``space_group``, in a random orientation."""
    lattice = _conventional_lattice(SpaceGroup(space_group).int_number)
    generic = [[0.123, 0.271, 0.389], [0.347, 0.089, 0.713]]  # general positions: site symmetry 1
    crystal = Structure.from_spacegroup(space_group, lattice, ["Si", "O"], generic)
    atoms = transform_atoms(AseAtomsAdaptor.get_atoms(crystal), random_orthogonal(21, proper=True))
    info = analyze_symmetry(atoms)
    return info.point_group, info.operations


def symmetric_basis(permutations: list[tuple[int, ...]]) -> np.ndarray:
    """Orthonormal basis (3**rank, dim) of the tensors invariant under the index permutations."""
    rank = len(permutations[0])
    eye = np.eye(3**rank).reshape((3**rank,) + (3,) * rank)
    sym = np.mean([eye.transpose((0,) + tuple(p + 1 for p in perm)) for perm in permutations], axis=0)
    eigvals, eigvecs = np.linalg.eigh(sym.reshape(3**rank, 3**rank))
    return eigvecs[:, eigvals > 0.5]


def independent_components(ops: np.ndarray, target: str) -> int:
    """Rank of the projector restricted to the target's index-symmetric subspace."""
    basis = symmetric_basis(INDEX_SYMMETRY[target])  # (3**rank, d)
    rank = len(INDEX_SYMMETRY[target][0])
    images = [reynolds_projection(col.reshape((3,) * rank), ops).ravel() for col in basis.T]
    matrix = basis.T @ np.array(images).T  # (d, d) matrix of P on the symmetric subspace
    np.testing.assert_allclose(matrix @ matrix, matrix, atol=1e-10)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-10)
    n_independent = np.linalg.matrix_rank(matrix, tol=1e-8)
    assert np.trace(matrix) == pytest.approx(n_independent, abs=1e-9)
    return int(n_independent)


def test_index_symmetric_subspaces_have_the_textbook_dimensions():
    assert [symmetric_basis(INDEX_SYMMETRY[t]).shape[1] for t in INDEX_SYMMETRY] == [6, 18, 21]


@pytest.mark.parametrize("point_group, space_group", GENERATED)
def test_independent_components_per_point_group(point_group, space_group):
    detected, ops = generated_operations(space_group)
    assert detected == point_group
    _, n_dielectric, n_piezo, n_elastic = POINT_GROUPS[point_group]
    assert independent_components(ops, "dielectric") == n_dielectric
    assert independent_components(ops, "piezoelectric") == n_piezo
    assert independent_components(ops, "elastic") == n_elastic


@pytest.mark.parametrize(
    "name, n_dielectric, n_piezo, n_elastic",
    [
        ("rutile", 2, 0, 6),
        ("wurtzite_zno", 2, 3, 5),  # e31, e33, e15
        ("alpha_quartz", 2, 2, 6),  # e11, e14
        ("monoclinic_zro2", 4, 0, 13),
        ("triclinic", 6, 0, 21),
        ("nacl", 1, 0, 3),
        ("silicon", 1, 0, 3),
        ("batio3_p4mm", 2, 3, 6),
    ],
)
def test_independent_components_of_real_crystals(request, name, n_dielectric, n_piezo, n_elastic):
    ops = point_group_operations(rattle(request.getfixturevalue(name), NOISE))
    assert independent_components(ops, "dielectric") == n_dielectric
    assert independent_components(ops, "piezoelectric") == n_piezo
    assert independent_components(ops, "elastic") == n_elastic


# --------------------------------------------------------------------------------------------------
# symprec
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("symprec", [1e-2, 0.05, 0.1])
def test_batio3_keeps_its_piezo_tensor_at_moderate_symprec(batio3_p4mm, symprec):
    info = analyze_symmetry(rattle(batio3_p4mm, NOISE), symprec=symprec)
    assert (info.space_group_symbol, info.point_group) == ("P4mm", "4mm")
    assert np.linalg.norm(reynolds_projection(random_tensor(3), info.operations)) > 0.1


def test_batio3_becomes_cubic_at_loose_symprec(batio3_p4mm):
    # Ti is displaced ~0.07 A and c - a = 0.04 A: at 0.3 A spglib sees Pm-3m, which has no piezo tensor.
    info = analyze_symmetry(batio3_p4mm, symprec=0.3)
    assert info.point_group == "m-3m"
    np.testing.assert_allclose(
        info.operations @ info.operations.transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), info.operations.shape),
        atol=1e-12,
    )
    assert np.abs(reynolds_projection(random_tensor(3), info.operations)).max() < 1e-12


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------
def test_non_periodic_atoms_are_rejected():
    molecule = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    with pytest.raises(ValueError, match="periodic"):
        point_group_operations(molecule)
    slab = Atoms("Si", cell=[3, 3, 3], pbc=[True, True, False])
    with pytest.raises(ValueError, match="periodic"):
        point_group_operations(slab)


@pytest.mark.parametrize(
    "cell",
    [np.zeros((3, 3)), [[1, 0, 0], [0, 1, 0], [1, 1, 0]], [[3, 0, 0], [0, 3, 0], [0, 0, 0]]],
    ids=["zero", "coplanar", "zero-vector"],
)
def test_degenerate_cell_is_rejected(cell):
    atoms = Atoms("Si", positions=[[0, 0, 0]], cell=cell, pbc=True)
    with pytest.raises(ValueError, match="degenerate|zero-length"):
        point_group_operations(atoms)


def test_empty_structures_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        point_group_operations(Atoms(cell=[3, 3, 3], pbc=True))
    with pytest.raises(ValueError, match="empty"):
        point_group_operations(Structure(Lattice.cubic(3.0), [], []))


def test_other_bad_input_is_rejected(rutile):
    with pytest.raises(TypeError, match="Atoms or pymatgen Structure"):
        cell_arrays(np.eye(3))
    with pytest.raises(ValueError, match="symprec"):
        analyze_symmetry(rutile, symprec=0.0)
    with pytest.raises(ValueError, match="shape"):
        symmetrize(np.zeros((3, 6)), rutile)
    nan_atoms = rutile.copy()
    nan_atoms.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        point_group_operations(nan_atoms)
