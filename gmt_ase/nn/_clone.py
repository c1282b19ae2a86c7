"""Fast copies of e3nn networks: new weights, shared generated code.

e3nn compiles every tensor product and linear map into a parameter-free ``torch.fx.GraphModule`` whose
only buffers are constant coupling coefficients. Generating that code is most of the cost of building a
network, and ``copy.deepcopy`` generates it again. :func:`clone_module` shares the graph modules instead,
so the members of an ensemble cost one network to build, not one each.
"""

from __future__ import annotations

from torch import fx, nn

__all__ = ["clone_module"]

_OWN_CONTAINERS = ("_parameters", "_buffers", "_modules")


def clone_module(module: nn.Module) -> nn.Module:
    """Copy ``module`` with its own parameters and buffers, sharing e3nn's generated ``fx`` code.

    The copy computes the same function as ``module`` and its weights are independent (loading a
    state dict into one does not change the other).
    """
    if isinstance(module, fx.GraphModule):
        return module
    clone = object.__new__(type(module))
    state = module.__dict__.copy()
    for key, value in state.items():  # hook dicts, the non-persistent buffer set: one container per module
        if key.startswith("_") and isinstance(value, dict | set) and key not in _OWN_CONTAINERS:
            state[key] = value.copy()
    clone.__dict__ = state
    clone._parameters = {
        name: None if p is None else nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
        for name, p in module._parameters.items()
    }
    clone._buffers = {name: None if b is None else b.clone() for name, b in module._buffers.items()}
    clone._modules = {name: None if m is None else clone_module(m) for name, m in module._modules.items()}
    return clone
