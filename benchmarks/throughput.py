"""Inference throughput and scaling of gmt_ase (see benchmarks/README.md).

Measures, for a loaded model:

1. throughput in structures/s of the public batched API (:func:`gmt_ase.predict.iter_predictions`: validation,
   symmetry analysis, graph building, all tensors, float64 re-projection; derived quantities are lazy and timed
   separately) on crystals
   sampled from the data files (median ~8 atoms), batched (``--batch-size``, default 64) vs one by one, plus
   a per-stage breakdown of the batched run (symmetry, graphs, model);
2. scaling of time and peak memory with the number of atoms, on supercells of an 8-atom cell (8 ... 1000
   atoms): wall time per stage, number of edges, Python/NumPy peak (tracemalloc), process peak RSS
   (``resource.getrusage``) and, on CUDA, the peak allocated GPU memory.

Usage::

    python benchmarks/throughput.py                     # shipped default model, full run
    python benchmarks/throughput.py --tiny --quick      # tiny untrained model, a few seconds
    python benchmarks/throughput.py --json results.json --device cuda
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from gmt_ase.core.symmetry import analyze_symmetry
from gmt_ase.inference.predictor import CrystalInput, TensorPredictor
from gmt_ase.predict import iter_predictions

DATA_FILES = (
    "matminer_mp_tensors_2018/dielectric_petousis2017.json.gz",
    "matminer_mp_tensors_2018/piezoelectric_dejong2015.json.gz",
    "matminer_mp_tensors_2018/elastic_dejong2015.json.gz",
)
FULL_SIZES = (1, 2, 3, 4, 5)  # n x n x n supercells: 8, 64, 216, 512, 1000 atoms
QUICK_SIZES = (1, 2)


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------
def load_predictor(args: argparse.Namespace, workdir: Path) -> TensorPredictor:
    dtype = getattr(torch, args.dtype)
    if args.tiny:
        from gmt_ase.inference.io import make_test_checkpoint

        path = make_test_checkpoint(workdir / "tiny.pt", seed=0)
        return TensorPredictor.from_checkpoint(path, device=args.device, dtype=dtype)
    return TensorPredictor.from_checkpoint(args.model, device=args.device, dtype=dtype)


def data_structures(data_dir: Path, count: int, species: frozenset[int], seed: int = 0) -> list[Atoms]:
    """A seeded random sample of ``count`` structures from the data files (supported species only)."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    raw: list[dict] = []
    for name in DATA_FILES:
        path = data_dir / name
        if path.is_file():
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                content = json.load(handle)
            raw.extend(content["records"] if isinstance(content, dict) else content)
    order = np.random.default_rng(seed).permutation(len(raw))
    atoms: list[Atoms] = []
    for index in order:
        candidate = AseAtomsAdaptor.get_atoms(Structure.from_dict(raw[index]["structure"]))
        if set(candidate.numbers.tolist()) <= species:
            atoms.append(candidate)
        if len(atoms) == count:
            break
    return atoms


def built_structures(count: int) -> list[Atoms]:
    """Fallback without data files: a cycle of small textbook crystals (2-8 atoms)."""
    cells = [
        bulk("NaCl", "rocksalt", a=5.64, cubic=True),
        bulk("Si", "diamond", a=5.43, cubic=True),
        bulk("ZnO", "wurtzite", a=3.25, c=5.21),
        bulk("MgO", "rocksalt", a=4.21),
        bulk("GaAs", "zincblende", a=5.65, cubic=True),
        bulk("Cu", "fcc", a=3.61, cubic=True),
    ]
    return [cells[i % len(cells)].copy() for i in range(count)]


def scaling_base() -> Atoms:
    """The 8-atom conventional rock-salt cell whose supercells are used for scaling."""
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True)


# --------------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------------
def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def run_api(
    structures: Sequence[Atoms], predictor: TensorPredictor, batch_size: int, derived: bool = False
) -> float:
    """Seconds for the public batched API on ``structures``; every prediction must succeed.

    ``derived`` also evaluates each result's (lazy) derived quantities, as the CLI does.
    """

    def work() -> list:
        results = list(iter_predictions(structures, predictor, batch_size=batch_size))
        if derived:
            for result in results:
                if getattr(result, "ok", False):
                    _ = result.derived
        return results

    results, seconds = timed(work)
    failures = [r for r in results if not getattr(r, "ok", True)]
    if failures:
        raise RuntimeError(f"{len(failures)} predictions failed, first: {failures[0]}")
    return seconds


def stage_times(structures: Sequence[Atoms], predictor: TensorPredictor, batch_size: int) -> dict[str, float]:
    """Seconds spent in symmetry analysis, graph building and the model (collate + forward + projection)."""
    symmetry, t_sym = timed(lambda: [analyze_symmetry(a).operations for a in structures])
    crystals = [
        CrystalInput(a.numbers, a.positions, a.cell[:], ops) for a, ops in zip(structures, symmetry, strict=True)
    ]
    _, t_graph = timed(lambda: predictor.graphs(crystals))
    _, t_predict = timed(lambda: predictor.predict(crystals, batch_size=batch_size))  # builds graphs again
    return {"symmetry_s": t_sym, "graphs_s": t_graph, "model_s": max(t_predict - t_graph, 0.0)}


def throughput(structures: Sequence[Atoms], predictor: TensorPredictor, batch_size: int, n_single: int) -> dict:
    run_api(structures[: min(4, len(structures))], predictor, batch_size)  # warm-up (lazy initialisation)
    batched = run_api(structures, predictor, batch_size)
    with_derived = run_api(structures, predictor, batch_size, derived=True)
    singles = structures[:n_single]
    single = run_api(singles, predictor, 1)
    stages = stage_times(structures, predictor, batch_size)
    natoms = [len(a) for a in structures]
    return {
        "n_structures": len(structures),
        "median_atoms": float(np.median(natoms)),
        "mean_atoms": float(np.mean(natoms)),
        "batch_size": batch_size,
        "batched_structures_per_s": len(structures) / batched,
        "one_by_one_structures_per_s": len(singles) / single,
        "batched_with_derived_structures_per_s": len(structures) / with_derived,
        "n_one_by_one": len(singles),
        "batched_stage_share": {k: v / sum(stages.values()) for k, v in stages.items()},
    }


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def scaling_point(atoms: Atoms, predictor: TensorPredictor, repeats: int) -> dict:
    """Time (best of ``repeats``, after one untimed run) and memory of predicting one structure."""
    run_api([atoms], predictor, 1)
    seconds = min(run_api([atoms], predictor, 1) for _ in range(repeats))
    all_stages = [stage_times([atoms], predictor, 1) for _ in range(repeats)]
    stages = {key: min(s[key] for s in all_stages) for key in all_stages[0]}
    info = analyze_symmetry(atoms)
    crystal = CrystalInput(atoms.numbers, atoms.positions, atoms.cell[:], info.operations)
    edges = int(predictor.graphs([crystal])[0].edge_index.shape[1])
    if predictor.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(predictor.device)
    tracemalloc.start()
    run_api([atoms], predictor, 1)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    point = {
        "atoms": len(atoms),
        "edges": edges,
        "total_s": seconds,
        **stages,
        "tracemalloc_peak_mib": traced_peak / 2**20,
        "process_peak_rss_mib": _peak_rss_mib(),
    }
    if predictor.device.type == "cuda":
        point["cuda_peak_mib"] = torch.cuda.max_memory_allocated(predictor.device) / 2**20
    return point


def scaling(predictor: TensorPredictor, sizes: Sequence[int], max_atoms: int, repeats: int) -> list[dict]:
    """Scaling points in increasing size (so the monotonic peak RSS belongs to the largest so far)."""
    base = scaling_base()
    points = []
    for n in sizes:
        atoms = base.repeat((n, n, n))
        if len(atoms) > max_atoms:
            break
        points.append(scaling_point(atoms, predictor, repeats))
    return points


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------
def markdown(report: dict) -> str:
    t = report["throughput"]
    share = ", ".join(f"{k[:-2]} {100 * v:.0f}%" for k, v in t["batched_stage_share"].items())
    lines = [
        f"model {report['model']['name']} ({report['model']['sha256'][:12]}), device {report['device']}, "
        f"dtype {report['dtype']}, torch threads {report['torch_threads']}",
        "",
        f"| structures | median atoms | batched ({t['batch_size']}) structures/s | with derived quantities "
        "| one-by-one structures/s | batched time share |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {t['n_structures']} | {t['median_atoms']:.0f} | {t['batched_structures_per_s']:.1f} "
        f"| {t['batched_with_derived_structures_per_s']:.1f} | {t['one_by_one_structures_per_s']:.1f} | {share} |",
        "",
        "| atoms | edges | total s | symmetry s | graph s | model s | tracemalloc peak MiB | peak RSS MiB | CUDA MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in report["scaling"]:
        cuda = f"{p['cuda_peak_mib']:.0f}" if "cuda_peak_mib" in p else "-"
        lines.append(
            f"| {p['atoms']} | {p['edges']} | {p['total_s']:.3f} | {p['symmetry_s']:.3f} | {p['graphs_s']:.3f} "
            f"| {p['model_s']:.3f} | {p['tracemalloc_peak_mib']:.1f} | {p['process_peak_rss_mib']:.0f} | {cuda} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="shipped model name or checkpoint path")
    parser.add_argument("--tiny", action="store_true", help="use a tiny untrained test model instead")
    parser.add_argument("--quick", action="store_true", help="few structures, supercells up to 64 atoms")
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="data files (else built crystals)")
    parser.add_argument("--n-structures", type=int, default=None, help="default 512 (quick: 32)")
    parser.add_argument("--n-single", type=int, default=None, help="one-by-one subset, default 128 (quick: 8)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-atoms", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="scaling timings: best of this many runs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    n_structures = args.n_structures or (32 if args.quick else 512)
    n_single = args.n_single or (8 if args.quick else 128)
    with tempfile.TemporaryDirectory() as workdir:
        predictor = load_predictor(args, Path(workdir))
    structures = data_structures(args.data_dir, n_structures, predictor.species) if args.data_dir.is_dir() else []
    source = f"data files in {args.data_dir}" if structures else "built crystals"
    structures = structures or built_structures(n_structures)
    report = {
        "model": {"name": predictor.card.get("name"), "sha256": predictor.sha256},
        "device": str(predictor.device),
        "dtype": args.dtype,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "structures": source,
        "throughput": throughput(structures, predictor, args.batch_size, n_single),
        "scaling": scaling(predictor, QUICK_SIZES if args.quick else FULL_SIZES, args.max_atoms, args.repeats),
    }
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
