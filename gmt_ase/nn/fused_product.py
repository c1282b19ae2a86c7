"""A self tensor product ``x (x) x`` frozen into a few dense matrix products, for inference.

e3nn's :class:`~e3nn.o3.FullyConnectedTensorProduct` runs one small contraction per path (48 paths in the
many-body block), which on a CPU costs mostly call overhead. With its weights fixed, the product of a
feature vector with itself is a fixed bilinear map: for every pair of input irreps ``(a, b)`` with
``a <= b`` and every output irrep ``c`` that the pair reaches, the outer product ``x_a (x) x_b`` (flattened)
times one precomputed matrix gives the pair's contribution to ``c``. The matrices are read off the e3nn
module itself by evaluating it on basis vectors (in float64), so the fused map is the same bilinear map (as
equivariant as e3nn's own) and equal to e3nn's output up to floating-point rounding; it is three times faster
for the shipped model.

The fused module is a snapshot: it carries no parameters and does not follow later changes of the e3nn
weights, so it belongs to inference only (:func:`fuse_self_products` on a private copy of a trained model).
"""

from __future__ import annotations

import copy

import torch
from e3nn import o3
from torch import nn

from gmt_ase.nn.layers import GatedBlock

__all__ = ["FusedSelfProduct", "fuse_self_products"]


class FusedSelfProduct(nn.Module):
    """``product(x, x)`` of an e3nn tensor product with equal inputs, as per-pair dense matrix products.

    Parameters
    ----------
    product
        An e3nn tensor product whose two inputs have the same irreps (its weights are read now and not
        tracked afterwards).
    """

    def __init__(self, product: o3.TensorProduct) -> None:
        super().__init__()
        if product.irreps_in1 != product.irreps_in2:
            raise ValueError(
                f"a self product needs equal input irreps, got {product.irreps_in1} and {product.irreps_in2}"
            )
        if not product.internal_weights:
            raise ValueError("only a tensor product with internal (shared) weights can be fused")
        self.irreps_in = product.irreps_in1
        self.irreps_out = product.irreps_out
        self._inputs = [(s.start, s.stop) for s in self.irreps_in.slices()]
        self._outputs = [(s.start, s.stop) for s in self.irreps_out.slices()]
        self._pairs: list[tuple[int, int, list[int]]] = []  # (input a, input b, output blocks reached)
        dtype = next(product.parameters()).dtype
        for a, b, block, matrix in _pair_matrices(product):
            name = f"pair_{a}_{b}_out_{block}"
            self.register_buffer(name, matrix.to(dtype), persistent=False)
            if not self._pairs or self._pairs[-1][:2] != (a, b):
                self._pairs.append((a, b, []))
            self._pairs[-1][2].append(block)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Return the tensor product of ``x1`` with itself; ``x2`` must be the same tensor."""
        if x2 is not x1:
            raise ValueError("FusedSelfProduct computes x (x) x only: pass the same tensor twice")
        out = x1.new_zeros((*x1.shape[:-1], self.irreps_out.dim))
        for a, b, blocks in self._pairs:
            (a0, a1), (b0, b1) = self._inputs[a], self._inputs[b]
            outer = (x1[..., a0:a1, None] * x1[..., None, b0:b1]).flatten(-2)  # (..., dim_a dim_b)
            for block in blocks:
                c0, c1 = self._outputs[block]
                out[..., c0:c1] += outer @ getattr(self, f"pair_{a}_{b}_out_{block}")
        return out


@torch.no_grad()
def _pair_matrices(product: o3.TensorProduct) -> list[tuple[int, int, int, torch.Tensor]]:
    """List ``(a, b, c, M)``: ``M`` is the (dim_a dim_b, dim_c) matrix of input pair ``a <= b`` into output ``c``.

    Read off in float64 from basis vectors: ``B(e_p, e_q) + B(e_q, e_p)`` for ``a < b`` (both orders of the
    pair, as ``x (x) x`` contains both) and ``B(e_p, e_q)`` for ``a == b``; all-zero blocks are dropped.
    """
    probe = copy.deepcopy(product).to(torch.float64)  # .to() converts in place: never the caller's module
    basis = torch.eye(product.irreps_in1.dim, dtype=torch.float64, device=next(product.parameters()).device)
    slices = product.irreps_in1.slices()
    out_slices = product.irreps_out.slices()
    found = []
    for a, slice_a in enumerate(slices):
        for b in range(a, len(slices)):
            slice_b = slices[b]
            p = torch.arange(slice_a.start, slice_a.stop).repeat_interleave(slice_b.stop - slice_b.start)
            q = torch.arange(slice_b.start, slice_b.stop).repeat(slice_a.stop - slice_a.start)
            matrix = probe(basis[p], basis[q])
            if a != b:
                matrix = matrix + probe(basis[q], basis[p])
            for c, out_slice in enumerate(out_slices):
                block = matrix[:, out_slice]
                if torch.count_nonzero(block):
                    found.append((a, b, c, block.contiguous()))
    return found


def fuse_self_products(model: nn.Module) -> nn.Module:
    """Replace, in place, every gated block's self tensor product by a :class:`FusedSelfProduct`.

    For inference on a private copy of a trained model (the fused products are frozen snapshots and do
    not train). Returns ``model``.
    """
    for module in list(model.modules()):  # a list: the loop replaces submodules
        if isinstance(module, GatedBlock) and isinstance(module.product, o3.TensorProduct):
            module.product = FusedSelfProduct(module.product)
    return model
