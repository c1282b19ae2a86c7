"""Prediction on a real Dask cluster (LocalCluster, two worker processes): the Python API and ``gmt-ase predict
--scheduler`` give exactly the results of an in-process run, stream into the same output and resume."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import ase.io
import pytest

from gmt_ase.cli import main

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    """Two single-threaded worker processes (Dask's nanny gives each one torch thread).

    A nanny exports its pre-spawn variables (MALLOC_TRIM_THRESHOLD_, ...) into this process: restored after.
    """
    before = dict(os.environ)
    yield from _cluster()
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


def _cluster() -> Iterator[distributed.Client]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield client


@pytest.fixture
def one_thread():
    """Run the in-process reference with one torch thread, as the workers do: float32 sums then agree bitwise."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def structures(rutile, silicon, nacl, wurtzite_zno, alpha_quartz) -> list:
    nacl.positions[1] = nacl.positions[0] + [0.1, 0.0, 0.0]  # fails alone: atoms too close
    return [rutile, silicon, nacl, wurtzite_zno, alpha_quartz]


def test_predict_on_cluster_equals_an_in_process_run(
    cluster, tiny_model, one_thread, rutile, silicon, nacl, wurtzite_zno, alpha_quartz
):
    from gmt_ase.distributed import predict_on_cluster
    from gmt_ase.inference.cache import load_predictor
    from gmt_ase.predict import iter_predictions

    crystals = structures(rutile, silicon, nacl, wurtzite_zno, alpha_quartz)
    remote = list(predict_on_cluster(iter(crystals), cluster, model=tiny_model, batch_size=2, device="cpu"))
    local = list(iter_predictions(crystals, load_predictor(tiny_model, "cpu"), batch_size=2))
    assert [r.index for r in remote] == [0, 1, 2, 3, 4]
    assert [r.ok for r in remote] == [True, True, False, True, True]
    assert [r.to_dict() for r in remote] == [r.to_dict() for r in local]
    loaded = cluster.run(lambda: len(__import__("gmt_ase.inference.cache", fromlist=["_"])._PREDICTORS))
    assert sorted(loaded.values()) == [1, 1]  # each worker holds the model once, after three chunks


def test_cli_scheduler_writes_the_rows_of_an_in_process_run(
    cluster, tiny_model, one_thread, tmp_path, rutile, silicon, nacl, wurtzite_zno, alpha_quartz, capsys
):
    folder = tmp_path / "structures"
    folder.mkdir()
    for n, atoms in enumerate(structures(rutile, silicon, nacl, wurtzite_zno, alpha_quartz)):
        ase.io.write(folder / f"s{n}.extxyz", atoms)
    (folder / "broken.cif").write_text("")
    here, there = tmp_path / "local.jsonl", tmp_path / "cluster.jsonl"
    common = ["predict", str(folder), "--model", tiny_model, "--device", "cpu", "--batch-size", "2"]
    assert main([*common, "-o", str(here), "-q"]) == 0
    address = cluster.scheduler.address
    assert main([*common, "-o", str(there), "--scheduler", address]) == 0
    assert "2 workers" in capsys.readouterr().err
    local = [json.loads(line) for line in here.read_text().splitlines()]
    remote = [json.loads(line) for line in there.read_text().splitlines()]
    assert len(remote) == 6 and remote == local
    assert main([*common, "-o", str(there), "--scheduler", address]) == 0  # resumes: nothing left to do
    assert there.read_text().count("\n") == 6
    assert "4 skipped" in capsys.readouterr().err
    here_csv, there_csv = tmp_path / "local.csv", tmp_path / "cluster.csv"
    assert main([*common, "-o", str(here_csv), "-q"]) == 0
    assert main([*common, "-o", str(there_csv), "-q", "--scheduler", address]) == 0
    assert there_csv.read_text() == here_csv.read_text()


def test_a_bad_scheduler_address_is_a_clear_error(tiny_model, tmp_path, silicon, capsys):
    import dask

    ase.io.write(tmp_path / "Si.cif", silicon)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert (
            main(
                [
                    "predict",
                    str(tmp_path / "Si.cif"),
                    "--model",
                    tiny_model,
                    "--scheduler",
                    "tcp://127.0.0.1:1",
                    "-o",
                    str(tmp_path / "out.jsonl"),
                ]
            )
            == 2
        )
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:1" in capsys.readouterr().err


def test_without_dask_the_error_names_the_extra(monkeypatch):
    import sys

    from gmt_ase.distributed import connect

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r'pip install "gmt_ase\[distributed\]"'):
        connect("tcp://127.0.0.1:8786")


def test_output_rows_keep_their_place_when_a_chunk_has_nothing_to_predict(cluster, tiny_model, tmp_path, silicon):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a_empty.cif").write_text("")
    (folder / "b_empty.cif").write_text("")
    ase.io.write(folder / "c.cif", silicon)
    out = tmp_path / "out.jsonl"
    address = cluster.scheduler.address
    assert (
        main(
            [
                "predict",
                str(folder),
                "--model",
                tiny_model,
                "--batch-size",
                "2",
                "--scheduler",
                address,
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a_empty.cif", "b_empty.cif", "c.cif"]
    assert [r["ok"] for r in rows] == [False, False, True]


def test_a_worker_with_another_model_is_refused(cluster, tiny_model, silicon):
    from functools import partial

    from gmt_ase.distributed import ClusterError, map_chunks, predict_chunk

    task = partial(predict_chunk, model=tiny_model, device="cpu", dtype="float32", symprec=0.01, batch_size=1)
    with pytest.raises(ClusterError, match="another model"):
        list(map_chunks(cluster, [("only", ([silicon],))], task, expected_sha256="0" * 64))
