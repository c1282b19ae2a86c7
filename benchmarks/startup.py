"""Start-up time of gmt_ase (see benchmarks/README.md): what a user waits before the first prediction.

Every measurement runs in a fresh Python process (nothing cached), ``--repeats`` times; the median is reported.

1. ``import torch, e3nn``: the floor every model load pays;
2. ``GMTCalculator(model)`` after those imports, for ``default`` and ``fast`` (gmt_ase imports included);
3. ``gmt-ase info`` and a ``gmt-ase predict`` rerun with nothing left to do (whole commands, wall time).

Wall times on shared cores vary with the load; the process CPU time of (1) and (2) varies much less.
With ``--checkouts``, (1) and (2) are measured for each source tree (imported through ``PYTHONPATH``), the
trees taking turns within every repeat, so an A/B comparison sees the same load; ``--no-commands`` skips (3).

Usage::

    python benchmarks/startup.py                 # default and fast, 3 repeats
    python benchmarks/startup.py --repeats 5 --json startup.json
    python benchmarks/startup.py --checkouts ../old . --no-commands   # before/after, same run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "structures"

_CALCULATOR = """
import time
t0, c0 = time.perf_counter(), time.process_time()
import torch, e3nn, e3nn.o3
t1, c1 = time.perf_counter(), time.process_time()
from gmt_ase import GMTCalculator
GMTCalculator(model={model!r}, device="cpu")
t2, c2 = time.perf_counter(), time.process_time()
print(t1 - t0, t2 - t1, c1 - c0, c2 - c1)
"""


def _python(code: str, checkout: Path | None = None) -> list[float]:
    env = dict(os.environ)
    if checkout is not None:  # that tree's gmt_ase first (an editable install's finder comes after PYTHONPATH)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout.resolve()), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=checkout
    ).stdout
    return [float(x) for x in out.split()]


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def measure(
    models: list[str], repeats: int, checkouts: list[Path | None] | None = None, commands: bool = True
) -> dict[str, float]:
    """Median seconds of every measurement (keys prefixed with the checkout when there are several)."""
    results: dict[str, list[float]] = {}
    checkouts = checkouts or [None]
    for model in models:
        for _ in range(repeats):
            for checkout in checkouts:
                tag = f"[{checkout}] " if len(checkouts) > 1 else ""
                times = _python(_CALCULATOR.format(model=model), checkout)
                imports, calculator, imports_cpu, calculator_cpu = times
                results.setdefault(f"{tag}import torch + e3nn", []).append(imports)
                results.setdefault(f"{tag}import torch + e3nn, CPU time", []).append(imports_cpu)
                results.setdefault(f"{tag}GMTCalculator(model={model!r}) after the imports", []).append(calculator)
                results.setdefault(f"{tag}GMTCalculator(model={model!r}) after the imports, CPU time", []).append(
                    calculator_cpu
                )
                results.setdefault(f"{tag}GMTCalculator(model={model!r}) / import, wall ratio", []).append(
                    calculator / imports
                )
    if commands:
        _measure_commands(repeats, results)
    return {name: statistics.median(values) for name, values in results.items()}


def _measure_commands(repeats: int, results: dict[str, list[float]]) -> None:
    exe = shutil.which("gmt-ase") or "gmt-ase"
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.jsonl")
        subprocess.run([exe, "predict", str(EXAMPLES), "-o", out, "-q"], check=True)
        for _ in range(repeats):
            results.setdefault("gmt-ase info", []).append(_wall([exe, "info"]))
            results.setdefault("gmt-ase predict, rerun with nothing to do", []).append(
                _wall([exe, "predict", str(EXAMPLES), "-o", out, "-q"])
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "fast"], help="shipped model names or paths")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median)")
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    parser.add_argument("--checkouts", nargs="+", type=Path, help="source trees to compare (default: installed)")
    parser.add_argument("--no-commands", action="store_true", help="skip the gmt-ase command timings")
    args = parser.parse_args()
    medians = measure(args.models, args.repeats, args.checkouts, commands=not args.no_commands)
    print(f"| measurement (median of {args.repeats} fresh processes) | seconds |\n| --- | --- |")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(medians, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
