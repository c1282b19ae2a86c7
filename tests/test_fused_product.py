"""The fused self tensor product's closed-form matrices against the map read off e3nn by probing.

The oracle, :func:`probed_pair_matrices`, evaluates the e3nn module on pairs of basis vectors in float64
(what gmt_ase did at every model load before the closed form): whatever e3nn computes, it reads. The closed
form must give the same matrices to 1e-12 for the shipped model's trained products and for small random
products covering every e3nn connection mode, weighted and not, with explicit path weights.
"""

from __future__ import annotations

import random

import torch
from e3nn import o3

from gmt_ase.nn.fused_product import FusedSelfProduct, _pair_arrays


@torch.no_grad()
def probed_pair_matrices(product: o3.TensorProduct) -> list[tuple[int, int, int, torch.Tensor]]:
    """List ``(a, b, c, M)`` read off ``product`` in float64: ``B(e_p, e_q) + B(e_q, e_p)`` for ``a < b``,
    ``B(e_p, e_q)`` for ``a == b``, all-zero blocks dropped (the layout of ``_pair_arrays``)."""
    dtype = product.weight.dtype
    product.to(torch.float64)  # in place and back (exact): a deep copy of an e3nn module may fold its constants
    try:
        return _probe(product)
    finally:
        product.to(dtype)


def _probe(product: o3.TensorProduct) -> list[tuple[int, int, int, torch.Tensor]]:
    basis = torch.eye(product.irreps_in1.dim, dtype=torch.float64)
    slices = product.irreps_in1.slices()
    found = []
    for a, slice_a in enumerate(slices):
        for b in range(a, len(slices)):
            slice_b = slices[b]
            p = torch.arange(slice_a.start, slice_a.stop).repeat_interleave(slice_b.stop - slice_b.start)
            q = torch.arange(slice_b.start, slice_b.stop).repeat(slice_a.stop - slice_a.start)
            matrix = product(basis[p], basis[q])
            if a != b:
                matrix = matrix + product(basis[q], basis[p])
            for c, out_slice in enumerate(product.irreps_out.slices()):
                block = matrix[:, out_slice]
                if torch.count_nonzero(block):
                    found.append((a, b, c, block.contiguous()))
    return found


def assert_same_matrices(product: o3.TensorProduct) -> None:
    """The closed form and the probe list the same blocks, equal to 1e-12 in float64."""
    closed = [(a, b, c, torch.from_numpy(matrix)) for a, b, c, matrix in _pair_arrays(product)]
    probed = probed_pair_matrices(product)
    assert [key[:3] for key in closed] == [key[:3] for key in probed]
    for (a, b, c, expected), (_, _, _, matrix) in zip(probed, closed, strict=True):
        assert matrix.dtype == torch.float64
        torch.testing.assert_close(matrix, expected, rtol=1e-12, atol=1e-12, msg=f"pair ({a}, {b}) -> {c}")


def test_closed_form_equals_the_probe_for_the_shipped_model() -> None:
    """The trained many-body product of a member of the shipped default (float32 weights, as released; the
    ``fast`` model shares its configuration)."""
    from gmt_ase.inference.io import load_checkpoint

    net = load_checkpoint("default").model
    members = getattr(net, "members", [net])
    product = members[-1].many_body.product
    assert isinstance(product, o3.FullyConnectedTensorProduct)
    assert_same_matrices(product)


def _random_irreps(rng: random.Random, lmax: int, count: int) -> o3.Irreps:
    return o3.Irreps([(rng.randint(1, 3), (rng.randint(0, lmax), rng.choice((1, -1)))) for _ in range(count)])


def test_closed_form_equals_the_probe_for_a_random_fully_connected_product() -> None:
    """A seeded random configuration, built in float32 and then converted (as a checkpoint load does)."""
    rng = random.Random(17)  # a seed whose irreps hold l = 0, 1, 2 in and 0, 1, 2, 3 out, both parities
    irreps_in = _random_irreps(rng, 2, 4).sort().irreps.simplify()
    irreps_out = _random_irreps(rng, 3, 6).sort().irreps.simplify()
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(3)
        product = o3.FullyConnectedTensorProduct(irreps_in, irreps_in, irreps_out)
    finally:
        torch.random.set_rng_state(generator_state)
    assert len(product.instructions) == 22
    assert_same_matrices(product)
    assert_same_matrices(product.double())


def _mixed_mode_product() -> o3.TensorProduct:
    """Every e3nn connection mode once, some without weights, with explicit unequal path weights."""
    irreps_in = o3.Irreps("2x0e+3x1o+2x2e")
    irreps_out = o3.Irreps("2x0e+3x1o+3x1e+3x2e+6x1o+2x2e+2x2e+3x1o+1x0e+3x1e+4x2e")
    instructions = [
        (0, 2, 6, "uvw", True, 1.7),  # 0e x 2e -> 2e (e3nn's specialised l = 0 code)
        (1, 1, 3, "uvu", True, 0.6),  # 1o x 1o -> 2e
        (2, 1, 1, "uvv", True, 1.3),  # 2e x 1o -> 1o
        (1, 2, 7, "uvu", False, 0.9),  # 1o x 2e -> 1o, unweighted
        (1, 1, 2, "uuu", True, 2.1),  # 1o x 1o -> 1e (e3nn's cross product)
        (2, 2, 5, "uuw", True, 0.4),  # 2e x 2e -> 2e
        (0, 0, 8, "uuw", False, 1.1),  # 0e x 0e -> 0e, unweighted, summed over u
        (1, 2, 4, "uvuv", True, 0.8),  # 1o x 2e -> 1o, one output per (u, v)
        (1, 1, 0, "uvw", True, 1.0),  # 1o x 1o -> 0e
        (1, 1, 9, "uvu<v", True, 1.2),  # 1o x 1o -> 1e, the 3 pairs u < v
        (2, 2, 10, "u<vw", True, 0.7),  # 2e x 2e -> 2e over the pair u < v
    ]
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(8)
        return o3.TensorProduct(irreps_in, irreps_in, irreps_out, instructions, internal_weights=True)
    finally:
        torch.random.set_rng_state(generator_state)


def test_closed_form_equals_the_probe_in_every_connection_mode() -> None:
    """Mode by mode, the weights land where e3nn's contraction puts them, path weights included."""
    product = _mixed_mode_product()
    assert {ins.connection_mode for ins in product.instructions} == {
        "uvw",
        "uvu",
        "uvv",
        "uuu",
        "uuw",
        "uvuv",
        "uvu<v",
        "u<vw",
    }
    assert_same_matrices(product)
    assert_same_matrices(product.double())


def test_fused_product_of_every_connection_mode_is_the_e3nn_product() -> None:
    """The fused module built on the closed form reproduces e3nn's ``x (x) x`` in float64."""
    product = _mixed_mode_product().double()
    x = torch.randn(7, product.irreps_in1.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(FusedSelfProduct(product)(x, x), product(x, x), rtol=1e-12, atol=1e-12)
