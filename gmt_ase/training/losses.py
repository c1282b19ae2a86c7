"""Multi-task training loss on masked batches (differentiable, torch only).

Every term is a relative error, so that dielectric constants of 3 and 30 or stiffnesses of 20 and
400 GPa count alike (which is what the EwT metrics reward):

* dielectric electronic / ionic and elastic: mean squared error of the log-space tensors;
* piezoelectric: squared log error of the norm plus squared error of the unit direction, per crystal;
* K/G-only crystals: squared log errors of the Voigt-Reuss-Hill moduli derived from the predicted C.
"""

from __future__ import annotations

import torch

from gmt_ase.core.tensors import MANDEL_WEIGHTS

__all__ = ["DEFAULT_WEIGHTS", "multitask_loss", "vrh_moduli"]

DEFAULT_WEIGHTS = {
    "dielectric_electronic": 1.0,
    "dielectric_ionic": 0.5,
    "elastic": 1.0,
    "piezoelectric": 1.0,
    "kg": 0.5,
}
PIEZO_FLOOR = 1e-3  # C/m^2, smallest target norm taken at face value


def _mandel_factors(like: torch.Tensor) -> torch.Tensor:
    """``w = m m^T`` (6, 6) with ``m`` the Mandel weights, in the dtype and device of ``like``."""
    m = torch.tensor(MANDEL_WEIGHTS.tolist(), dtype=like.dtype, device=like.device)  # (6,)
    return torch.outer(m, m)  # (6, 6)


def vrh_moduli(log_elastic: torch.Tensor, elastic_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Hill bulk and shear moduli (GPa) from the log-space Mandel stiffness ``M`` (B, 6, 6).

    ``C_Mandel = c0 exp(M)``; Voigt stiffness ``C_V = C_M / w`` and Voigt compliance
    ``S_V = S_M * w`` with ``w = m m^T``, ``m = (1, 1, 1, sqrt2, sqrt2, sqrt2)``.
    """
    w = _mandel_factors(log_elastic)
    c = elastic_scale * torch.linalg.matrix_exp(log_elastic) / w  # (B, 6, 6) Voigt stiffness
    s = torch.linalg.matrix_exp(-log_elastic) / elastic_scale * w  # (B, 6, 6) Voigt compliance

    def parts(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        diag = torch.diagonal(t, dim1=-2, dim2=-1)
        return diag[:, :3].sum(-1), t[:, 0, 1] + t[:, 0, 2] + t[:, 1, 2], diag[:, 3:].sum(-1)

    c_a, c_b, c_c = parts(c)
    s_a, s_b, s_c = parts(s)
    k_voigt, g_voigt = (c_a + 2 * c_b) / 9, (c_a - c_b + 3 * c_c) / 15
    k_reuss, g_reuss = 1 / (s_a + 2 * s_b), 15 / (4 * s_a - 4 * s_b + 3 * s_c)
    return 0.5 * (k_voigt + k_reuss), 0.5 * (g_voigt + g_reuss)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    if not bool(mask.any()):
        return None
    return values[mask].mean()


def multitask_loss(
    outputs: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    elastic_scale: float,
    weights: dict[str, float] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the per-target losses present in the batch, and each term's value."""
    weights = {**DEFAULT_WEIGHTS, **(weights or {})}
    terms: dict[str, torch.Tensor] = {}
    for name in ("dielectric_electronic", "dielectric_ionic", "elastic"):
        key = f"log_{name}"
        err = (outputs[key] - batch[key]).pow(2).flatten(1).mean(-1)  # (B,)
        value = _masked_mean(err, batch[f"mask_{key}"])
        if value is not None:
            terms[name] = value
    mask_pz = batch["mask_piezoelectric"]
    target = batch["piezoelectric"].flatten(1)  # (B, 27)
    target_norm = target.norm(dim=-1).clamp(min=PIEZO_FLOOR)  # (B,)
    log_err = (outputs["log_piezoelectric_magnitude"] - target_norm.log()).pow(2)
    dir_err = (outputs["piezoelectric_direction"].flatten(1) - target / target_norm[:, None]).pow(2).sum(-1)
    value = _masked_mean(log_err + dir_err, mask_pz)
    if value is not None:
        terms["piezoelectric"] = value
    mask_kg = batch["mask_k_vrh"]
    if bool(mask_kg.any()):
        k, g = vrh_moduli(outputs["log_elastic"][mask_kg], elastic_scale)
        log_err = (k.clamp(min=1e-3).log() - batch["k_vrh"][mask_kg].clamp(min=1e-3).log()).pow(2) + (
            g.clamp(min=1e-3).log() - batch["g_vrh"][mask_kg].clamp(min=1e-3).log()
        ).pow(2)
        terms["kg"] = log_err.mean()
    total = sum(weights[name] * value for name, value in terms.items())
    if not terms:
        total = outputs["elastic"].sum() * 0.0
    return total, {name: float(value.detach()) for name, value in terms.items()}
