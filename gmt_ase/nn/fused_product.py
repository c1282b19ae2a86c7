"""A self tensor product ``x (x) x`` frozen into a few dense matrix products, for inference.

e3nn's :class:`~e3nn.o3.FullyConnectedTensorProduct` runs one small contraction per path (48 paths in the
many-body block), which on a CPU costs mostly call overhead. With its weights fixed, the product of a
feature vector with itself is a fixed bilinear map: for every pair of input irreps ``(a, b)`` with
``a <= b``, the outer product ``x_a (x) x_b`` (flattened; for ``a == b`` only its products ``x_i x_j`` with
``i <= j``, the symmetric half) times one precomputed matrix gives the pair's contributions to every output
irrep ``c`` it reaches. The matrices are built in closed form (float64) from the module's instructions,
weights, path weights and Wigner 3j blocks, the way e3nn's generated code contracts them, so the fused map is
the same bilinear map (as equivariant as e3nn's own) and equal to e3nn's output up to floating-point
rounding; building them takes milliseconds, and the fused map is about four times faster than e3nn's for
the shipped model.

The fused module is a snapshot: it carries no parameters and does not follow later changes of the e3nn
weights, so it belongs to inference only (:func:`fuse_self_products` on a private copy of a trained model).
"""

from __future__ import annotations

from math import prod
from typing import TYPE_CHECKING

import numpy as np
import torch
from e3nn import o3
from torch import nn

from gmt_ase.nn.layers import GatedBlock

if TYPE_CHECKING:
    from e3nn.o3._tensor_product._instruction import Instruction

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
        # per input pair (a, b): the output blocks it reaches, their matrices side by side in one buffer
        self._pairs: list[tuple[int, int, list[int]]] = []
        matrices: dict[tuple[int, int], list[np.ndarray]] = {}
        for a, b, block, matrix in _pair_arrays(product):
            if a == b:  # x_a (x) x_a is symmetric: keep the products x_i x_j with i <= j, rows (i, j) + (j, i)
                matrix = _fold_symmetric(matrix, self._inputs[a][1] - self._inputs[a][0])
            if (a, b) not in matrices:
                self._pairs.append((a, b, []))
                matrices[(a, b)] = []
            self._pairs[-1][2].append(block)
            matrices[(a, b)].append(matrix)
        dtype, device = next(product.parameters()).dtype, product.weight.device
        for (a, b), blocks in matrices.items():
            self.register_buffer(f"pair_{a}_{b}", _to_torch(np.hstack(blocks), dtype, device), persistent=False)
            if a == b:
                upper_i, upper_j = np.triu_indices(self._inputs[a][1] - self._inputs[a][0])
                for name, index in (("left", upper_i), ("right", upper_j)):
                    index = torch.as_tensor(self._inputs[a][0] + index, dtype=torch.long, device=device)
                    self.register_buffer(f"pair_{a}_{name}", index, persistent=False)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """Return the tensor product of ``x1`` with itself; ``x2`` must be the same tensor."""
        if x2 is not x1:
            raise ValueError("FusedSelfProduct computes x (x) x only: pass the same tensor twice")
        out = x1.new_zeros((*x1.shape[:-1], self.irreps_out.dim))
        for a, b, blocks in self._pairs:
            if a == b:  # (..., dim_a (dim_a + 1) / 2): x_i x_j for i <= j
                left, right = getattr(self, f"pair_{a}_left"), getattr(self, f"pair_{a}_right")
                outer = x1.index_select(-1, left) * x1.index_select(-1, right)
            else:
                (a0, a1), (b0, b1) = self._inputs[a], self._inputs[b]
                outer = (x1[..., a0:a1, None] * x1[..., None, b0:b1]).flatten(-2)  # (..., dim_a dim_b)
            reached = outer @ getattr(self, f"pair_{a}_{b}")  # (..., summed dims of the blocks reached)
            start = 0
            for block in blocks:
                c0, c1 = self._outputs[block]
                out[..., c0:c1] += reached[..., start : start + c1 - c0]
                start += c1 - c0
        return out


@torch.no_grad()
def _pair_arrays(product: o3.TensorProduct) -> list[tuple[int, int, int, np.ndarray]]:
    """List ``(a, b, c, M)``: ``M`` is the (dim_a dim_b, dim_c) matrix of input pair ``a <= b`` into output ``c``.

    Closed form, in float64, from the product's own instructions and weights, contracted as e3nn's generated
    code does: instruction ``(a, b, c)`` maps ``x_a[u, i] y_b[v, j]`` to ``out_c[w, k]`` with coefficient
    ``path_weight * W[u, v, w] * C[i, j, k]`` (``W``: the instruction's weights in ``uvw`` form,
    :func:`_uvw_weights`; ``C``: its Wigner 3j block, :func:`_wigner_block`). For ``a < b`` the pair's matrix
    also holds instruction ``(b, a, c)`` with its two inputs swapped, as ``x (x) x`` contains both orders;
    all-zero blocks are dropped. Milliseconds, where reading the map off the module costs seconds.
    NumPy float64 arrays.
    """
    irreps_in, irreps_out = product.irreps_in1, product.irreps_out
    tensors: dict[tuple[int, int, int], np.ndarray] = {}  # (a, b, c) -> (mul_a d_a, mul_b d_b, mul_c d_c)
    weights = product.weight.detach().cpu().numpy().astype(np.float64)  # NumPy: single-threaded small ops
    buffers = dict(product.named_buffers())
    specialised = bool(getattr(product, "_specialized_code", True))
    offset = 0
    for ins in product.instructions:
        size = prod(ins.path_shape) if ins.has_weight else 0
        if 0 in ins.path_shape:
            offset += size
            continue
        w = _uvw_weights(ins, weights[offset : offset + size], irreps_in, irreps_out)  # (mul_a, mul_b, mul_c)
        offset += size
        ls = (irreps_in[ins.i_in1].ir.l, irreps_in[ins.i_in2].ir.l, irreps_out[ins.i_out].ir.l)
        cg = _wigner_block(buffers, ls, exact=_exact_formula(ins, ls, specialised))  # (d_a, d_b, d_c)
        block = (ins.path_weight * w)[:, None, :, None, :, None] * cg[None, :, None, :, None, :]
        block = block.reshape(w.shape[0] * cg.shape[0], w.shape[1] * cg.shape[1], w.shape[2] * cg.shape[2])
        key = (ins.i_in1, ins.i_in2, ins.i_out)
        tensors[key] = tensors[key] + block if key in tensors else block
    found = []
    for a in range(len(irreps_in)):
        for b in range(a, len(irreps_in)):
            for c in range(len(irreps_out)):
                matrix = tensors.get((a, b, c))
                if a != b and (b, a, c) in tensors:
                    swapped = tensors[(b, a, c)].transpose(1, 0, 2)
                    matrix = swapped if matrix is None else matrix + swapped
                if matrix is not None and matrix.any():
                    found.append((a, b, c, matrix.reshape(-1, matrix.shape[-1])))
    return found


def _fold_symmetric(matrix: np.ndarray, dim: int) -> np.ndarray:
    """Rows of a (dim dim, n) matrix of ``x (x) x`` folded onto the products ``x_i x_j``, ``i <= j``.

    ``sum_ij x_i x_j M[(i, j)] = sum_{i <= j} x_i x_j F[(i, j)]`` with ``F = M[(i, j)] + M[(j, i)]`` off the
    diagonal and ``M[(i, i)]`` on it: (dim (dim + 1) / 2, n), about half the multiply-adds.
    """
    blocks = matrix.reshape(dim, dim, -1)
    upper_i, upper_j = np.triu_indices(dim)
    return blocks[upper_i, upper_j] + (upper_i != upper_j)[:, None] * blocks[upper_j, upper_i]


def _to_torch(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Return a contiguous tensor copy of ``array`` in ``dtype`` on ``device``.

    NumPy casts where it can: torch's casts of large tensors go through its thread pool, which crawls on
    busy cores.
    """
    numpy_dtype = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)
    if numpy_dtype is None:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=dtype)
    return torch.from_numpy(np.array(array, dtype=numpy_dtype, order="C")).to(device)


def _uvw_weights(ins: Instruction, flat: np.ndarray, irreps_in: o3.Irreps, irreps_out: o3.Irreps) -> np.ndarray:
    """Return the (mul_a, mul_b, mul_c) weights of one instruction in any connection mode (ones if unweighted)."""
    mul_a, mul_b, mul_c = irreps_in[ins.i_in1].mul, irreps_in[ins.i_in2].mul, irreps_out[ins.i_out].mul
    w = flat.reshape(ins.path_shape) if ins.has_weight else np.ones(ins.path_shape)
    if ins.connection_mode == "uvw":
        return w
    full = np.zeros((mul_a, mul_b, mul_c))
    u, v = np.meshgrid(np.arange(mul_a), np.arange(mul_b), indexing="ij")
    diagonal = np.arange(mul_a)
    mode = ins.connection_mode
    if mode == "uvu":
        full[u, v, u] = w
    elif mode == "uvv":
        full[u, v, v] = w
    elif mode == "uuw":
        full[diagonal, diagonal] = w
    elif mode == "uuu":
        full[diagonal, diagonal, diagonal] = w
    elif mode == "uvuv":
        full[u, v, u * mul_b + v] = w
    elif mode in ("uvu<v", "u<vw"):
        upper_u, upper_v = np.triu_indices(mul_a, 1, mul_b)
        if mode == "uvu<v":
            full[upper_u, upper_v, np.arange(len(upper_u))] = w
        else:
            full[upper_u, upper_v] = w
    else:
        raise ValueError(f"unknown e3nn connection mode {mode!r}")
    return full


def _exact_formula(ins: Instruction, ls: tuple[int, int, int], specialised: bool) -> bool:
    """Whether e3nn's generated code computes this path with an exact formula instead of a stored 3j block.

    Mirrors e3nn 0.5-0.6's ``codegen_tensor_product_left_right``: with specialised code on, the modes ``uvw``,
    ``uvu``, ``uvv``, ``uuw`` and ``uuu`` use ``1 / sqrt(dim)`` when an ``l`` is 0 (``uvu`` and ``uuw`` only
    when weighted) and ``uuu`` uses the cross product for ``1 x 1 -> 1``.
    """
    mode = ins.connection_mode
    if not specialised or mode not in ("uvw", "uvu", "uvv", "uuw", "uuu"):
        return False
    if not ins.has_weight and mode in ("uvu", "uuw"):
        return False
    return 0 in ls or (mode == "uuu" and ls == (1, 1, 1))


def _wigner_block(buffers: dict[str, torch.Tensor], ls: tuple[int, int, int], exact: bool) -> np.ndarray:
    """Return the (2 l1 + 1, 2 l2 + 1, 2 l3 + 1) Wigner 3j block that a path contracts with, in float64.

    e3nn's generated code keeps the blocks it contracts with as buffers, built in the dtype that was the
    default when the module was made (float32 digits, as a rule): take those, so the fused map is the
    module's own. Paths it computes with exact formulas (``exact``, :func:`_exact_formula`) get
    :func:`e3nn.o3.wigner_3j` in float64, which equals those formulas.
    """
    stored = buffers.get("_compiled_main_left_right._w3j_{}_{}_{}".format(*ls))
    if stored is not None and not exact:
        return stored.detach().cpu().numpy().astype(np.float64)
    return o3.wigner_3j(*ls, dtype=torch.float64).numpy()


def fuse_self_products(model: nn.Module) -> nn.Module:
    """Replace, in place, every gated block's self tensor product by a :class:`FusedSelfProduct`.

    For inference on a private copy of a trained model (the fused products are frozen snapshots and do
    not train). Returns ``model``.
    """
    for module in list(model.modules()):  # a list: the loop replaces submodules
        if isinstance(module, GatedBlock) and isinstance(module.product, o3.TensorProduct):
            module.product = FusedSelfProduct(module.product)
    return model
