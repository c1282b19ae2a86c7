"""Evaluation reports: parity plots (PNG) and a plain-text table of the overall metrics.

Both read the output of :func:`gmt_ase.evaluation.evaluate.evaluate`; matplotlib is imported only when a plot is
written (and never through pyplot, so no global backend state is touched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["format_table", "parity_plots"]


def _parity_axes(ax: Any, true: np.ndarray, pred: np.ndarray, title: str, unit: str) -> None:
    ax.scatter(true.ravel(), pred.ravel(), s=4, alpha=0.5)
    both = np.concatenate([true.ravel(), pred.ravel()])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    ax.plot([low, high], [low, high], color="k", linewidth=0.8)
    suffix = f" ({unit})" if unit else ""
    ax.set_xlabel(f"DFT{suffix}")
    ax.set_ylabel(f"predicted{suffix}")
    ax.set_title(title)


def _save_parity(path: Path, panels: list[tuple[np.ndarray, np.ndarray, str, str]]) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    fig = Figure(figsize=(4.2 * len(panels), 4.0), layout="constrained")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        _parity_axes(ax, *panel)
    fig.savefig(path, dpi=120)


_UNITS = {"piezoelectric": "C/m$^2$", "elastic": "GPa"}


def parity_plots(results: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write one parity plot (PNG) per target of ``results`` into ``out_dir``.

    ``results`` is what :func:`gmt_ase.evaluation.evaluate.evaluate` returns.

    Tensor plots show every entry of the stored arrays; moduli plots show K_VRH and G_VRH side by side.

    Returns
    -------
    list of pathlib.Path
        The files written.

    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, pair in results["pairs"].items():
        if name == "piezoelectric_zeros" or len(pair["true"]) == 0:
            continue
        path = out / f"parity_{name}.png"
        title = f"{name} (N={len(pair['true'])})"
        _save_parity(path, [(pair["true"], pair["pred"], title, _UNITS.get(name, ""))])
        written.append(path)
    for name, pair in results["moduli"].items():
        if len(pair["true"]) == 0:
            continue
        true, pred = pair["true"], pair["pred"]
        path = out / f"parity_{name}_kg.png"
        _save_parity(
            path,
            [(true[:, i], pred[:, i], f"{name}: {m} (N={len(true)})", "GPa") for i, m in enumerate(("K_VRH", "G_VRH"))],
        )
        written.append(path)
    return written


def format_table(metrics: dict[str, Any]) -> str:
    """Format the overall metrics as a short plain-text table."""
    lines = [f"{'target':<28}{'N':>6}{'Fnorm':>10}{'EwT25':>8}{'EwT10':>8}{'EwT5':>8}{'MAE':>10}"]
    for name, target in metrics["targets"].items():
        rows = [(name, target.get("overall"))]
        if "with_zeros" in target:
            rows.append((f"{name} (with zeros)", target["with_zeros"]["overall"]))
        for label, row in rows:
            if row is not None and "fnorm" in row:
                lines.append(
                    f"{label:<28}{row['count']:>6}{row['fnorm']:>10.3f}{100 * row['ewt25']:>7.1f}%"
                    f"{100 * row['ewt10']:>7.1f}%{100 * row['ewt5']:>7.1f}%{row['mae']:>10.3f}"
                )
        if "kg" in target:
            kg = target["kg"]["overall"]
            label = f"{name} K/G MAE (GPa)"
            lines.append(f"{label:<28}{kg['count']:>6}   K {kg['k_vrh_mae']:.2f}, G {kg['g_vrh_mae']:.2f}")
    violations = sum(metrics["symmetry_violations"].values())
    skipped = sum(metrics["records"]["skipped"].values())
    lines.append(f"symmetry violations: {violations}; skipped records: {skipped}")
    return "\n".join(lines)
