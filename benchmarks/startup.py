"""Start-up time of gmt_ase (see benchmarks/README.md): what a user waits before the first prediction.

Every measurement runs in a fresh Python process (nothing cached), ``--repeats`` times; the median is reported.

1. ``import torch, e3nn``: the floor every model load pays;
2. ``GMTCalculator(model)`` after those imports, for ``default`` and ``fast`` (gmt_ase imports included);
3. ``gmt-ase info`` and a ``gmt-ase predict`` rerun with nothing left to do (whole commands, wall time).

Wall times on shared cores vary with the load; the process CPU time of (1) and (2) varies much less.

Usage::

    python benchmarks/startup.py                 # default and fast, 3 repeats
    python benchmarks/startup.py --repeats 5 --json startup.json
"""

from __future__ import annotations

import argparse
import json
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


def _python(code: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [float(x) for x in out.split()]


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start


def measure(models: list[str], repeats: int) -> dict[str, float]:
    """Median seconds of every measurement."""
    results: dict[str, list[float]] = {}
    for model in models:
        for _ in range(repeats):
            imports, calculator, imports_cpu, calculator_cpu = _python(_CALCULATOR.format(model=model))
            results.setdefault("import torch + e3nn", []).append(imports)
            results.setdefault("import torch + e3nn, CPU time", []).append(imports_cpu)
            results.setdefault(f"GMTCalculator(model={model!r}) after the imports", []).append(calculator)
            results.setdefault(f"GMTCalculator(model={model!r}) after the imports, CPU time", []).append(
                calculator_cpu)
    exe = shutil.which("gmt-ase") or "gmt-ase"
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.jsonl")
        subprocess.run([exe, "predict", str(EXAMPLES), "-o", out, "-q"], check=True)
        for _ in range(repeats):
            results.setdefault("gmt-ase info", []).append(_wall([exe, "info"]))
            results.setdefault("gmt-ase predict, rerun with nothing to do", []).append(
                _wall([exe, "predict", str(EXAMPLES), "-o", out, "-q"]))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["default", "fast"], help="shipped model names or paths")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per measurement (median)")
    parser.add_argument("--json", type=Path, help="also write the medians to this file")
    args = parser.parse_args()
    medians = measure(args.models, args.repeats)
    print(f"| measurement (median of {args.repeats} fresh processes) | seconds |\n| --- | --- |")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(medians, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
