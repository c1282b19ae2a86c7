"""Throughput on a Dask cluster: one worker process against two (and an in-process run beside them).

```bash
pip install -e ".[distributed]"
python benchmarks/dask_workers.py --model fast --count 128 --workers 1 2 --rounds 3 [--json results/dask_workers.json]
```

For each worker count a ``dask.distributed.LocalCluster`` of single-threaded worker processes is started, the
model is loaded once on every worker with ``client.run(warm_up)`` (which also imports the prediction path;
timed apart), then the same seeded sample of data crystals is predicted with
:func:`gmt_ase.distributed.predict_on_cluster` (``--batch-size`` structures per chunk). The in-process
reference runs :func:`gmt_ase.predict.iter_predictions` with one torch thread, like each worker, after the
same warm-up. Wall times include symmetry analysis, graphs, the network and the derived quantities.
Worker counts are interleaved over ``--rounds`` (a fresh cluster each time); besides wall-clock throughput,
the CPU seconds per structure are reported (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="shipped model name or checkpoint path")
    parser.add_argument("--count", type=int, default=256, help="structures to predict")
    parser.add_argument("--batch-size", type=int, default=32, help="structures per chunk (one Dask task)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every worker count")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process reference")
    parser.add_argument(
        "--no-malloc-trim",
        action="store_true",
        help="start workers without Dask's MALLOC_TRIM_THRESHOLD_=65536 (see benchmarks/README.md)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    return parser.parse_args(argv)


def sample(args: argparse.Namespace) -> list:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from throughput import data_structures  # the throughput benchmark's seeded sample of data crystals

    from gmt_ase.inference.io import read_checkpoint_metadata

    metadata, _ = read_checkpoint_metadata(args.model)
    return data_structures(args.data_dir, args.count, frozenset(int(z) for z in metadata["species"]))


def in_process(args: argparse.Namespace, structures: list) -> dict[str, float]:
    import torch

    from gmt_ase.distributed import warm_up
    from gmt_ase.inference.cache import load_predictor
    from gmt_ase.predict import iter_predictions

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        predictor = load_predictor(args.model, "cpu")
        warm_up(args.model, "cpu")  # the prediction path's imports, as on the workers
        loaded, cpu_before = time.perf_counter(), _cpu_seconds()
        results = list(iter_predictions(structures, predictor, batch_size=args.batch_size))
        for result in results:
            _ = result.ok and result.derived
        done, cpu = time.perf_counter(), _cpu_seconds() - cpu_before
    finally:
        torch.set_num_threads(threads)
    return {
        "load_s": loaded - start,
        "predict_s": done - loaded,
        "per_s": len(structures) / (done - loaded),
        "cpu_s": cpu,
        "per_cpu_s": len(structures) / cpu,
    }


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def on_cluster(args: argparse.Namespace, structures: list, workers: int) -> dict[str, float]:
    from distributed import Client, LocalCluster

    from gmt_ase.distributed import predict_on_cluster, warm_up

    start = time.perf_counter()
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter()
        client.run(warm_up, args.model, "cpu")  # the model, and the prediction path's imports
        loaded = time.perf_counter()
        cpu_before = sum(client.run(_cpu_seconds).values())
        results = list(
            predict_on_cluster(structures, client, model=args.model, batch_size=args.batch_size, device="cpu")
        )
        done = time.perf_counter()
        cpu = sum(client.run(_cpu_seconds).values()) - cpu_before
    assert len(results) == len(structures)
    return {
        "cluster_start_s": started - start,
        "load_s": loaded - started,
        "predict_s": done - loaded,
        "per_s": len(structures) / (done - loaded),
        "worker_cpu_s": cpu,
        "per_cpu_s": len(structures) / cpu,
        "failed": sum(not r.ok for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.no_malloc_trim:  # a None value unsets the variable; os.environ too (an earlier nanny may have set it)
        import dask

        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
        os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    structures = sample(args)
    report: dict = {
        "model": args.model,
        "count": len(structures),
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "python": platform.python_version(),
    }
    if not args.no_in_process:
        report["in_process_1_thread"] = in_process(args, structures)
        print(f"in process, 1 thread: {report['in_process_1_thread']}", flush=True)
    rounds: dict[int, list[dict[str, float]]] = {workers: [] for workers in args.workers}
    for round_ in range(args.rounds):
        for workers in args.workers:
            rounds[workers].append(on_cluster(args, structures, workers))
            print(f"round {round_ + 1}, Dask, {workers} worker(s): {rounds[workers][-1]}", flush=True)
    for workers, runs in rounds.items():
        summary = {key: statistics.median(run[key] for run in runs) for key in ("load_s", "per_s", "per_cpu_s")}
        report[f"dask_{workers}_workers"] = {"median": summary, "rounds": runs}
        print(f"median, {workers} worker(s): {summary}", flush=True)
    report["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
