"""Weight averages: the exponential moving average (every step) and stochastic weight averaging (epochs)."""

from __future__ import annotations

import torch

from gmt_ase.nn.model import GMTNet

__all__ = ["average_into", "moving_average_copy", "update_ema"]


def moving_average_copy(model: GMTNet, device: torch.device) -> GMTNet:
    """Build a second model with the same weights, for the moving average.

    It is built fresh: a deep copy of e3nn's compiled tensor products would add their constants to the
    state dict, and the exported checkpoint would no longer load.
    """
    ema = GMTNet(model.config).to(device)
    ema.load_state_dict(model.state_dict())
    return ema.requires_grad_(False)


def update_ema(ema: GMTNet, model: GMTNet, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for every floating-point parameter."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - decay)


def average_into(swa: dict | None, model: GMTNet) -> dict:
    """Add the model's weights to their running mean (stochastic weight averaging, last ``swa_epochs``)."""
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if swa is None:
        return {"count": 1, "state": weights}
    count = swa["count"] + 1
    for key, value in weights.items():
        if value.is_floating_point():
            swa["state"][key] += (value - swa["state"][key]) / count
    swa["count"] = count
    return swa
