"""Batched throughput of one checkout, for A/B comparisons between versions on a noisy machine.

Times :func:`gmt_ase.predict.iter_predictions` (batch 64) on the same seeded sample of data crystals as
``throughput.py``, ``--repeats`` times in one process after a warm-up batch, and prints one JSON line with
the package path, the best and the median structures/s, and the median structures per CPU second (all
threads; steadier than the wall clock when other work shares the machine). Run it alternately for two
checkouts, several rounds, from each checkout's root, and compare medians (``benchmarks/README.md``,
"Version 5 against version 2"); ``--one-by-one`` times the ASE calculator, one structure per call::

    for round in 1 2 3; do
        (cd ../old && PYTHONPATH=$PWD python ../new/benchmarks/ab_throughput.py) >> old.jsonl
        (cd ../new && PYTHONPATH=$PWD python benchmarks/ab_throughput.py) >> new.jsonl
    done
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path.cwd() / "benchmarks"))  # the measured checkout's own sampler (same in old ones)
from throughput import data_structures  # noqa: E402

import gmt_ase  # noqa: E402
from gmt_ase.predict import iter_predictions  # noqa: E402

try:
    from gmt_ase.inference.predictor import TensorPredictor
except ImportError:  # checkouts before the layered package (issue 12) kept it in gmt_ase/inference.py
    from gmt_ase.inference import TensorPredictor  # type: ignore[no-redef]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="shipped model name or checkpoint path")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="data folder of the checkout")
    parser.add_argument("--n-structures", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--one-by-one", action="store_true",
                        help="time the ASE calculator, one structure per call, instead of the batched API")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    structures = data_structures(args.data_dir, args.n_structures, frozenset(range(1, 95)))
    if args.one_by_one:
        return _one_by_one(args, structures)
    predictor = TensorPredictor.from_checkpoint(args.model, device="cpu")
    list(iter_predictions(structures[: args.batch_size], predictor, batch_size=args.batch_size))  # warm-up
    rates, cpu_rates = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        list(iter_predictions(structures, predictor, batch_size=args.batch_size))
        rates.append(len(structures) / (time.perf_counter() - start))
        cpu_rates.append(len(structures) / (time.process_time() - cpu_start))
    print(json.dumps({"package": gmt_ase.__file__, "model": args.model, "structures": len(structures),
                      "best": max(rates), "median": statistics.median(rates),
                      "cpu_median": statistics.median(cpu_rates)}))
    return 0


def _one_by_one(args: argparse.Namespace, structures: list) -> int:
    """Time ``GMTCalculator`` on one structure per call (every property, as ``atoms.calc`` users get them)."""
    from gmt_ase import GMTCalculator

    calc = GMTCalculator(model=args.model, device="cpu")
    calc.get_property("elastic_tensor", structures[0].copy())  # warm-up
    rates, cpu_rates = [], []
    for _ in range(args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        for atoms in structures:
            calc.get_property("elastic_tensor", atoms.copy())
        rates.append(len(structures) / (time.perf_counter() - start))
        cpu_rates.append(len(structures) / (time.process_time() - cpu_start))
    print(json.dumps({"package": gmt_ase.__file__, "model": args.model, "structures": len(structures),
                      "mode": "one by one", "best": max(rates), "median": statistics.median(rates),
                      "cpu_median": statistics.median(cpu_rates)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
