"""Physics tests of the network (:mod:`gmt_ase.nn.model`) on tiny models.

Equivariance, invariances, exact symmetry, positivity, smoothness at the cutoff and gradient flow.

Three models are tested: the tiny test checkpoint (:func:`gmt_ase.inference.io.make_test_checkpoint`), a freshly built
tiny :class:`GMTNet` with a different configuration (other cutoff, widths and depth) and the same with the
element descriptor table added to the species embedding. Several structures go
through one forward call wherever possible, to keep the suite fast.

Measured equivariance errors (worst over 6 random O(3) matrices, rattled triclinic crystal, relative
Frobenius norm): float32 ~2e-7 for the rank-2 and rank-4 outputs and ~5e-8 C/m^2 absolute for the (small,
~5e-4 C/m^2) untrained piezoelectric output; float64 ~1e-11 relative for the rank-2 and rank-4 outputs and
up to 4e-9 for the piezoelectric one (e3nn's Clebsch-Gordan constants are float32-exact only, and the
normalisation of a small untrained piezo direction amplifies that). A broken equivariance gives errors of
order 1. The float32 tolerances leave margins of about 20-100x, the float64 ones about 3x.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
from ase import Atoms

from gmt_ase.core.symmetry import DEFAULT_SYMPREC, analyze_symmetry, reynolds_projection
from gmt_ase.core.tensors import full_to_voigt, mandel_from_full
from gmt_ase.graph.crystal_graph import CrystalGraph, build_graph, collate
from gmt_ase.inference.io import LoadedCheckpoint, load_checkpoint
from gmt_ase.inference.predictor import CrystalInput, TensorPredictor
from gmt_ase.nn.model import OUTPUT_KEYS, GMTNet, ModelConfig
from gmt_ase.testing import random_orthogonal, rotate_tensor, transform_atoms
from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, fill_element_table

#: (rtol, atol) of the equivariance checks: err <= rtol * ||T|| + atol.
# float32: the piezo direction is normalised after the projection, which amplifies rounding ~10x;
# 1e-4 is e3nn's own float32 equivariance tolerance. float64 stays tight.
TOLERANCES = {torch.float32: (1e-4, 1e-6), torch.float64: (1e-8, 1e-10)}
FRESH_CONFIG = ModelConfig(
    cutoff=4.0,
    scalar_dim=8,
    invariant_layers=2,
    density_channels=(4, 2, 2, 2, 2),
    hidden_irreps="4x0e+2x1o+2x2e+2x2o+2x3o+2x4e",
    product_irreps="2x0e+1x1o+1x2e+1x3o+1x4e",
    head_irreps="2x0e+2x1o+2x2e+2x2o+2x3o+2x4e",
    avg_num_neighbors=10.0,
)
SYMMETRIC_FIXTURES = ("rutile", "nacl", "silicon", "wurtzite_zno", "alpha_quartz", "batio3_p4mm", "triclinic")


# --------------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------------
def rattled(atoms: Atoms, stdev: float = 0.05, seed: int = 0) -> Atoms:
    """Copy with Gaussian noise on the positions (breaks every symmetry but the identity)."""
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(scale=stdev, size=out.positions.shape)
    return out


def identity_graph(atoms: Atoms, cutoff: float) -> CrystalGraph:
    """Graph whose only operation is the identity: the model's symmetry projection does nothing."""
    return build_graph(atoms.numbers, atoms.positions, atoms.cell[:], np.eye(3)[None], cutoff)


def run_model(model: GMTNet, structures: list[Atoms], dtype: torch.dtype) -> list[dict[str, np.ndarray]]:
    """Raw network outputs (only the identity operation, so no symmetry projection) as float64 arrays."""
    graphs = [identity_graph(atoms, model.config.cutoff) for atoms in structures]
    with torch.no_grad():
        out = model(collate(graphs, dtype))
    return [{k: out[k][b].to(torch.float64).numpy() for k in OUTPUT_KEYS} for b in range(len(structures))]


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float, what: str) -> float:
    """Assert ``||actual - expected|| <= rtol * ||expected|| + atol``; return the error."""
    err = float(np.linalg.norm(actual - expected))
    bound = rtol * float(np.linalg.norm(expected)) + atol
    assert err <= bound, f"{what}: error {err:.3g} > {bound:.3g}"
    return err


@pytest.fixture(scope="module")
def checkpoint_path(tiny_model: str) -> str:
    return tiny_model


@pytest.fixture(scope="module")
def loaded_checkpoint(checkpoint_path: str) -> LoadedCheckpoint:
    return load_checkpoint(checkpoint_path)


@pytest.fixture(scope="module")
def base_models(loaded_checkpoint: LoadedCheckpoint) -> dict[str, GMTNet]:
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(1)
        fresh = GMTNet(FRESH_CONFIG).eval()
        with_elements = GMTNet(replace(FRESH_CONFIG, element_features=len(ELEMENT_FEATURE_NAMES))).eval()
        fill_element_table(with_elements)
    finally:
        torch.random.set_rng_state(generator_state)
    return {"checkpoint": loaded_checkpoint.model, "fresh": fresh, "fresh_elements": with_elements}


@pytest.fixture(scope="module", params=["checkpoint", "fresh", "fresh_elements"])
def model_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def models(base_models: dict[str, GMTNet], model_name: str) -> dict[torch.dtype, GMTNet]:
    """The model under test in float32 (the shared instance) and float64 (a copy)."""
    base = base_models[model_name]
    return {torch.float32: base, torch.float64: copy.deepcopy(base).double()}


@pytest.fixture
def low_symmetry(triclinic: Atoms) -> Atoms:
    return rattled(triclinic, 0.05, seed=0)


# --------------------------------------------------------------------------------------------------
# equivariance and invariances of the raw outputs
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_o3_equivariance(models: dict[torch.dtype, GMTNet], low_symmetry: Atoms, dtype: torch.dtype) -> None:
    rtol, atol = TOLERANCES[dtype]
    matrices = [random_orthogonal(seed, proper=seed % 2 == 0) for seed in range(4)]
    assert sorted(np.sign(np.linalg.det(q)) for q in matrices) == [-1, -1, 1, 1]  # 2 rotations, 2 reflections
    structures = [low_symmetry] + [transform_atoms(low_symmetry, q) for q in matrices]
    outputs = run_model(models[dtype], structures, dtype)
    reference = outputs[0]
    assert np.linalg.norm(reference["piezoelectric"]) > 1e-5  # odd output is not trivially zero
    for q, out in zip(matrices, outputs[1:], strict=True):
        for key in OUTPUT_KEYS:
            expected = rotate_tensor(reference[key], q)
            err = assert_close(out[key], expected, rtol, atol, f"{key}, det {np.linalg.det(q):+.0f}")
            # the check is meaningful: the tensor itself moves far more than the tolerance
            bound = max(err, rtol * np.linalg.norm(expected) + atol)
            assert np.linalg.norm(expected - reference[key]) > 10 * bound


def _translated(atoms: Atoms) -> Atoms:
    out = atoms.copy()
    out.positions += np.array([0.37, -1.21, 2.9])
    return out


def _wrapped(atoms: Atoms) -> Atoms:
    out = _translated(atoms)
    out.wrap()
    return out


def _permuted(atoms: Atoms) -> Atoms:
    return atoms[np.random.default_rng(3).permutation(len(atoms))]


INVARIANCES: dict[str, Callable[[Atoms], Atoms]] = {
    "translation": _translated,
    "translation+wrap": _wrapped,
    "permutation": _permuted,
    "supercell 2x1x1": lambda atoms: atoms.repeat((2, 1, 1)),
    "supercell 2x2x1": lambda atoms: atoms.repeat((2, 2, 1)),
}


def test_invariances(models: dict[torch.dtype, GMTNet], low_symmetry: Atoms) -> None:
    dtype = torch.float64
    rtol, atol = TOLERANCES[dtype]
    variants = [make(low_symmetry) for make in INVARIANCES.values()]
    outputs = run_model(models[dtype], [low_symmetry, *variants], dtype)
    for name, out in zip(INVARIANCES, outputs[1:], strict=True):
        for key in OUTPUT_KEYS:
            assert_close(out[key], outputs[0][key], rtol, atol, f"{name}, {key}")


def test_float32_matches_float64(models: dict[torch.dtype, GMTNet], low_symmetry: Atoms) -> None:
    (out32,) = run_model(models[torch.float32], [low_symmetry], torch.float32)
    (out64,) = run_model(models[torch.float64], [low_symmetry], torch.float64)
    for key in OUTPUT_KEYS:
        assert_close(out32[key], out64[key], *TOLERANCES[torch.float32], key)


# --------------------------------------------------------------------------------------------------
# symmetry and positivity of the predictor's outputs
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictions(
    base_models: dict[str, GMTNet], model_name: str, loaded_checkpoint: LoadedCheckpoint
) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
    """float32 TensorPredictor outputs (float64 re-projection) and operations for symmetric crystals."""
    import conftest

    builders = {
        "rutile": conftest.build_rutile,
        "nacl": conftest.build_nacl,
        "silicon": conftest.build_silicon,
        "wurtzite_zno": conftest.build_wurtzite_zno,
        "alpha_quartz": conftest.build_alpha_quartz,
        "batio3_p4mm": conftest.build_batio3_p4mm,
        "triclinic": conftest.build_triclinic,
    }
    metadata = loaded_checkpoint.metadata | {"cutoff": base_models[model_name].config.cutoff}
    predictor = TensorPredictor(base_models[model_name], metadata, "0" * 64, device="cpu", dtype=torch.float32)
    crystals, operations = [], []
    for name in SYMMETRIC_FIXTURES:
        atoms = builders[name]()
        ops = analyze_symmetry(atoms, DEFAULT_SYMPREC).operations
        crystals.append(CrystalInput(atoms.numbers, atoms.positions, atoms.cell[:], ops))
        operations.append(ops)
    outputs = predictor.predict(crystals, batch_size=4)
    return {name: (out, ops) for name, out, ops in zip(SYMMETRIC_FIXTURES, outputs, operations, strict=True)}


def test_outputs_are_exactly_symmetric(predictions: dict) -> None:
    for name, (out, ops) in predictions.items():
        for key in OUTPUT_KEYS:
            tensor = out[key]
            residual = np.linalg.norm(reynolds_projection(tensor, ops) - tensor)
            bound = 1e-10 * max(1.0, np.linalg.norm(tensor))
            assert residual < bound, f"{name} {key}: residual {residual:.2e}"


def test_network_outputs_are_symmetric_before_any_reprojection(models: dict[torch.dtype, GMTNet]) -> None:
    """The network itself projects (in float64 here to 1e-12); the predictor's re-projection only removes
    float32 rounding. Without the in-network projection the outputs would be off by order 1."""
    import conftest

    structures = [conftest.build_rutile(), conftest.build_wurtzite_zno(), conftest.build_batio3_p4mm()]
    model = models[torch.float64]
    graphs, operations = [], []
    for atoms in structures:
        ops = analyze_symmetry(rattled(atoms, 1e-4), DEFAULT_SYMPREC).operations  # the noisy-cell (Weyl) operations
        graphs.append(build_graph(atoms.numbers, atoms.positions, atoms.cell[:], ops, model.config.cutoff))
        operations.append(ops)
    with torch.no_grad():
        out = model(collate(graphs, torch.float64))
    for b, ops in enumerate(operations):
        for key in OUTPUT_KEYS:
            tensor = out[key][b].numpy()
            residual = np.linalg.norm(reynolds_projection(tensor, ops) - tensor)
            assert residual < 1e-12 * max(1.0, np.linalg.norm(tensor)), f"{b} {key}: residual {residual:.2e}"


@pytest.mark.parametrize("name", ["rutile", "nacl", "silicon"])
def test_centrosymmetric_piezo_is_zero(predictions: dict, name: str) -> None:
    out, _ = predictions[name]
    assert np.abs(out["piezoelectric"]).max() < 1e-12


def test_polar_crystal_piezo_is_not_zero(predictions: dict) -> None:
    for name in ("wurtzite_zno", "batio3_p4mm"):
        assert np.abs(predictions[name][0]["piezoelectric"]).max() > 1e-8


@pytest.mark.parametrize("name", ["nacl", "silicon"])
def test_cubic_forms(predictions: dict, name: str) -> None:
    out, _ = predictions[name]
    for key in ("dielectric_electronic", "dielectric_ionic"):
        eps = out[key]
        np.testing.assert_allclose(eps, np.trace(eps) / 3 * np.eye(3), rtol=0, atol=1e-12 * np.abs(eps).max())
    c = full_to_voigt(out["elastic"])
    scale = np.abs(c).max()
    expected = np.zeros((6, 6))
    expected[:3, :3] = c[0, 1]
    expected[np.arange(3), np.arange(3)] = c[0, 0]
    expected[np.arange(3, 6), np.arange(3, 6)] = c[3, 3]
    np.testing.assert_allclose(c, expected, rtol=0, atol=1e-12 * scale)
    assert abs(c[0, 0] - c[0, 1]) > 1e-6 * scale and c[3, 3] > 1e-6 * scale  # three distinct constants


def test_positivity(predictions: dict) -> None:
    for name, (out, _) in predictions.items():
        assert np.linalg.eigvalsh(out["dielectric_electronic"]).min() > 1.0, name
        if name == "silicon":  # an elemental solid: no ionic part at all
            assert np.all(out["dielectric_ionic"] == 0.0)
        else:
            assert np.linalg.eigvalsh(out["dielectric_ionic"]).min() > 0.0, name
        assert np.linalg.eigvalsh(mandel_from_full(out["elastic"])).min() > 0.0, name


# --------------------------------------------------------------------------------------------------
# smoothness and gradients
# --------------------------------------------------------------------------------------------------
def _pair_at(distance: float) -> Atoms:
    """Three atoms in a 13 A cubic box; only the O0-Si2 distance (``distance``) is near the cutoff."""
    positions = [[0.0, 0.0, 0.0], [1.6, 0.7, 0.4], [distance, 0.0, 0.0]]
    return Atoms("OTiSi", positions=positions, cell=np.eye(3) * 13.0, pbc=True)


def test_smooth_across_cutoff(models: dict[torch.dtype, GMTNet]) -> None:
    model, dtype = models[torch.float64], torch.float64
    cutoff = model.config.cutoff
    distances = (cutoff - 1e-6, cutoff + 1e-6, cutoff + 3e-6, cutoff - 1.0)
    inside, outside, further, far_inside = run_model(model, [_pair_at(d) for d in distances], dtype)
    edges_in = identity_graph(_pair_at(cutoff - 1e-6), cutoff).edge_index.shape[1]
    edges_out = identity_graph(_pair_at(cutoff + 1e-6), cutoff).edge_index.shape[1]
    assert edges_in == edges_out + 2  # the pair (two directed edges) crosses the cutoff
    for key in OUTPUT_KEYS:
        scale = np.linalg.norm(outside[key])
        crossing = np.linalg.norm(inside[key] - outside[key])
        assert crossing < 1e-4 * scale, key
        # the step across the cutoff is no larger than the same step outside it (the other atoms move too)
        assert crossing <= 3 * np.linalg.norm(further[key] - outside[key]) + 1e-12 * scale, key
    # ... while the same neighbour well inside the cutoff does change the outputs
    change = np.linalg.norm(far_inside["elastic"] - outside["elastic"])
    assert change > 1e-6 * np.linalg.norm(outside["elastic"])


def test_gradients_flow(models: dict[torch.dtype, GMTNet], low_symmetry: Atoms, rutile: Atoms) -> None:
    model = models[torch.float64]  # the shared copy: gradients are cleared afterwards
    graphs = [
        build_graph(a.numbers, a.positions, a.cell[:], analyze_symmetry(a).operations, model.config.cutoff)
        for a in (low_symmetry, rutile)
    ]
    try:
        out = model(collate(graphs, torch.float64))
        loss = sum((value**2).mean() for value in out.values())
        loss.backward()
        total = 0.0
        for name, parameter in model.named_parameters():
            assert parameter.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(parameter.grad).all(), f"non-finite gradient for {name}"
            total += float(parameter.grad.norm())
        assert total > 0.0
    finally:
        model.zero_grad(set_to_none=True)


def test_ensemble_piezo_combination_does_not_shrink_disagreeing_signs() -> None:
    import numpy as np

    from gmt_ase.nn.model import combine_odd_tensors
    from gmt_ase.testing import random_orthogonal, rotate_tensor

    rng = np.random.default_rng(3)
    tensor = rng.normal(size=(3, 3, 3))
    members = torch.tensor(np.stack([tensor, -tensor, tensor])[:, None], dtype=torch.float64)
    combined = combine_odd_tensors(members)[0].numpy()
    np.testing.assert_allclose(combined, tensor, atol=1e-12)  # the plain mean would give tensor / 3
    noisy = np.stack([(tensor + 0.1 * rng.normal(size=(3, 3, 3))) * s for s in (1, -1, 1, 1)])
    q = random_orthogonal(11, proper=False)
    rotated = np.stack([rotate_tensor(t, q) for t in noisy])
    out = combine_odd_tensors(torch.tensor(noisy[:, None]))[0].numpy()
    out_rotated = combine_odd_tensors(torch.tensor(rotated[:, None]))[0].numpy()
    np.testing.assert_allclose(out_rotated, rotate_tensor(out, q), atol=1e-12)
    assert np.linalg.norm(out) == pytest.approx(np.mean([np.linalg.norm(t) for t in noisy]))
    zeros = combine_odd_tensors(torch.zeros(3, 2, 3, 3, 3, dtype=torch.float64))
    assert torch.count_nonzero(zeros) == 0


def test_pair_linear_is_a_linear_map_of_the_concatenated_edge_features() -> None:
    """``A h_i + B h_j + C rbf_ij`` (gathered, summed in place) equals one linear layer on the concatenation,
    and its gradients reach every weight and the node features."""
    from gmt_ase.nn.layers import _PairLinear

    generator = torch.Generator().manual_seed(3)
    layer = _PairLinear(dim=5, num_radial=4, out_dim=6).double()
    h = torch.randn(7, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    rbf = torch.randn(20, 4, dtype=torch.float64, generator=generator)
    edge_index = torch.randint(0, 7, (2, 20), generator=generator)
    weight = torch.cat([layer.centre.weight, layer.neighbour.weight, layer.radial.weight], dim=1)
    concatenated = torch.cat([h[edge_index[0]], h[edge_index[1]], rbf], dim=1)
    expected = concatenated @ weight.T + layer.centre.bias
    out = layer(h, rbf, edge_index)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    out.square().sum().backward()
    grads = [h.grad, layer.centre.weight.grad, layer.neighbour.weight.grad, layer.radial.weight.grad]
    assert all(g is not None and torch.count_nonzero(g) > 0 for g in grads)


# --------------------------------------------------------------------------------------------------
# the fused self tensor product of inference
# --------------------------------------------------------------------------------------------------
def test_fused_self_product_is_the_e3nn_product_and_equivariant() -> None:
    """The frozen per-pair matrices give e3nn's ``x (x) x`` (both orders of every pair of irreps) to float64
    rounding, and the map commutes with a rotation-reflection acting on input and output irreps."""
    from e3nn import o3

    from gmt_ase.nn.fused_product import FusedSelfProduct

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(5)
        irreps = o3.Irreps("3x0e+2x1o+2x2e+1x3o+1x4e")
        product = o3.FullyConnectedTensorProduct(irreps, irreps, "6x0e+3x1o+2x2o+3x2e+2x3o+2x4e").double()
        x = irreps.randn(11, -1, dtype=torch.float64)
    finally:
        torch.random.set_rng_state(generator_state)
    fused = FusedSelfProduct(product)
    with torch.no_grad():
        expected = product(x, x)
        torch.testing.assert_close(fused(x, x), expected, rtol=1e-12, atol=1e-12)
        angles = torch.tensor([0.7, 2.1, -1.3], dtype=torch.float64)  # a rotation times the inversion (k=1)
        d_in, d_out = (ir.D_from_angles(*angles, k=torch.tensor(1)) for ir in (irreps, product.irreps_out))
        x_rotated = x @ d_in.T
        # e3nn's Clebsch-Gordan tables hold float32 digits: its own product is equivariant to ~1e-7 relative
        torch.testing.assert_close(fused(x_rotated, x_rotated), expected @ d_out.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="same tensor twice"):
        fused(x, x.clone())


def test_fused_model_matches_the_e3nn_model(base_models: dict[str, GMTNet], nacl: Atoms) -> None:
    """Fusing a model's self products (as every predictor does) keeps its outputs and leaves the
    caller's model untouched."""
    from gmt_ase.nn.fused_product import FusedSelfProduct, fuse_self_products

    model = copy.deepcopy(base_models["fresh"]).double()
    structures = [rattled(nacl, 0.05, seed=1)]
    expected = run_model(model, structures, torch.float64)
    fused = fuse_self_products(copy.deepcopy(model))
    assert any(isinstance(m, FusedSelfProduct) for m in fused.modules())
    assert not any(isinstance(m, FusedSelfProduct) for m in model.modules())
    for key, value in run_model(fused, structures, torch.float64)[0].items():
        assert_close(value, expected[0][key], 1e-10, 1e-12, key)
    predictor = TensorPredictor(base_models["checkpoint"], {"species": list(range(1, 95)), "cutoff": 5.0}, "")
    assert any(isinstance(m, FusedSelfProduct) for m in predictor.model.modules())
    assert not any(isinstance(m, FusedSelfProduct) for m in base_models["checkpoint"].modules())


def test_ensemble_shares_edge_features_and_equals_its_members_run_alone(nacl: Atoms) -> None:
    """The ensemble computes the radial basis, envelope and harmonics once for all members; each member's
    outputs are bit-identical to running it alone, and the ensemble combines them as documented."""
    from gmt_ase.nn.model import GMTEnsemble, combine_odd_tensors

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(4)
        ensemble = GMTEnsemble(FRESH_CONFIG, 2).double().eval()
        with torch.no_grad():
            for parameter in ensemble.members[1].parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
    finally:
        torch.random.set_rng_state(generator_state)
    graphs = [identity_graph(rattled(nacl, 0.05, seed=s), FRESH_CONFIG.cutoff) for s in (2, 3)]
    batch = collate(graphs, torch.float64)
    with torch.no_grad():
        combined = ensemble(batch)
        alone = [member(batch) for member in ensemble.members]
    assert not torch.equal(alone[0]["elastic"], alone[1]["elastic"])
    for key in ("elastic", "dielectric_electronic", "dielectric_ionic"):
        torch.testing.assert_close(combined[key], (alone[0][key] + alone[1][key]) / 2, rtol=0, atol=0)
    expected_piezo = combine_odd_tensors(torch.stack([out["piezoelectric"] for out in alone]))
    torch.testing.assert_close(combined["piezoelectric"], expected_piezo, rtol=0, atol=0)
