"""Prediction on the workers of a running Dask cluster (``pip install "gmt_ase[distributed]"``).

The structures are cut into chunks of ``batch_size``; each chunk is one Dask task,
:func:`predict_chunk`, which runs :func:`gmt_ase.predict.iter_predictions` on a worker with the predictor
of :func:`gmt_ase.inference.cache.load_predictor`. That cache lives in the worker process, so every worker
loads the model once, at its first chunk, and keeps it. The derived quantities (pymatgen's moduli, the
costly part after the network) are computed on the workers too.

Only ``chunks_in_flight`` chunks are submitted at a time and results come back in input order, so a
generator of a million structures streams through in constant memory, and the results equal those of an
in-process run with the same ``batch_size`` (the same code on the same chunks)::

    from dask.distributed import Client
    from gmt_ase.distributed import predict_on_cluster

    with Client("tcp://scheduler:8786") as client:
        for result in predict_on_cluster(structures, client, model="default"):
            ...

The workers need gmt_ase (same version) and, for a checkpoint file, the same path on a shared file system;
:func:`predict_chunk` returns the sha256 of the model it used, which :func:`map_chunks` checks against the
checksum of the model read here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from itertools import islice
from typing import Any

from gmt_ase.core.symmetry import DEFAULT_SYMPREC
from gmt_ase.predict import Result

__all__ = ["INSTALL_HINT", "ClusterError", "connect", "map_chunks", "predict_chunk", "predict_on_cluster", "warm_up"]

INSTALL_HINT = 'pip install "gmt_ase[distributed]"'


class ClusterError(RuntimeError):
    """The Dask cluster cannot be reached or used, or its workers run another model than expected."""


def connect(scheduler: Any) -> tuple[Any, bool]:
    """Return a ``dask.distributed.Client`` for ``scheduler`` and whether it was created here (to close it).

    Parameters
    ----------
    scheduler
        A scheduler address (``"tcp://host:8786"``, a scheduler file's path ending in ``.json``) or an
        existing ``Client``, returned as it is.

    Raises
    ------
    ImportError
        If dask.distributed is not installed (the message names the extra).
    ClusterError
        If no scheduler answers at that address within Dask's connection timeout (configuration key
        ``distributed.comm.timeouts.connect``, 30 s by default).

    """
    if not isinstance(scheduler, str | os.PathLike):
        return scheduler, False
    try:
        from distributed import Client
    except ImportError as error:
        raise ImportError(f"--scheduler needs dask.distributed: {INSTALL_HINT}") from error
    address = os.fspath(scheduler)
    try:  # waits up to Dask's connect timeout (config distributed.comm.timeouts.connect)
        if address.endswith(".json"):
            return Client(scheduler_file=address), True
        return Client(address), True
    except (OSError, TimeoutError, ValueError) as error:
        raise ClusterError(f"cannot connect to the Dask scheduler at {address}: {error}") from error


def predict_chunk(
    structures: list[Any],
    start: int = 0,
    *,
    model: str,
    device: str | None,
    dtype: str,
    symprec: float,
    batch_size: int,
) -> tuple[str, list[Result]]:
    """Predict one chunk on a worker with its cached predictor: (model sha256, one result per structure).

    Results are indexed from ``start`` (the chunk's position in the whole input); their derived
    quantities are already computed.
    """
    from gmt_ase.inference.cache import load_predictor
    from gmt_ase.predict import iter_predictions

    predictor = load_predictor(model, device, dtype)
    results = []
    for result in iter_predictions(structures, predictor, symprec=symprec, batch_size=batch_size):
        result = replace(result, index=start + result.index)
        if result.ok:
            _ = result.derived  # computed here, on the worker, and sent back with the result
        results.append(result)
    return str(predictor.card.get("sha256")), results


def warm_up(model: str, device: str | None = None, dtype: str = "float32") -> str:
    """Load the model on this worker and predict bulk Si once, importing the whole prediction path.

    The modules of the prediction path (symmetry, warnings, pymatgen's elastic formulas) are then imported
    before the first chunk arrives. Meant for ``client.run(warm_up, model)``; returns the model's sha256.
    """
    from ase.build import bulk

    sha, _ = predict_chunk(
        [bulk("Si", "diamond", a=5.43)], model=model, device=device, dtype=dtype, symprec=DEFAULT_SYMPREC, batch_size=1
    )
    return sha


def _window(client: Any) -> int:
    """Chunks to keep in flight: two per worker thread, so no worker waits for the next chunk."""
    threads = sum(client.nthreads().values()) if hasattr(client, "nthreads") else 1
    return max(2, 2 * threads)


def map_chunks(
    client: Any,
    chunks: Iterable[tuple[Any, tuple[Any, ...]]],
    task: Callable[..., tuple[str, list[Result]]],
    *,
    expected_sha256: str | None = None,
    chunks_in_flight: int | None = None,
) -> Iterator[tuple[Any, list[Result]]]:
    """Submit ``task(*args)`` per chunk to the cluster and yield ``(tag, results)`` in chunk order.

    Parameters
    ----------
    client
        A ``dask.distributed.Client``.
    chunks
        ``(tag, args)`` pairs, consumed lazily (``args`` usually ``(structures,)``; ``None`` for a chunk
        with nothing to predict, which yields ``(tag, [])`` in its turn); the tag comes back with the
        chunk's results.
    task
        A picklable callable, usually ``functools.partial(predict_chunk, model=..., ...)``, returning
        ``(model sha256, results)``.
    expected_sha256
        Refuse results of another model (a worker with another gmt_ase or checkpoint).
    chunks_in_flight
        Chunks submitted ahead of the one being waited for (default: two per worker thread).

    Raises
    ------
    ClusterError
        If a worker used another model; a task's own exception is raised as it is.

    """
    window = chunks_in_flight or _window(client)
    iterator = iter(chunks)
    pending: deque[tuple[Any, Any]] = deque()
    try:
        while True:
            for tag, args in islice(iterator, window - len(pending)):
                pending.append((tag, None if args is None else client.submit(task, *args, pure=False)))
            if not pending:
                return
            tag, future = pending.popleft()
            if future is None:  # nothing to predict in this chunk
                yield tag, []
                continue
            sha, results = future.result()
            if expected_sha256 is not None and sha != expected_sha256:
                raise ClusterError(
                    f"a Dask worker predicted with another model (sha256 {sha}, expected "
                    f"{expected_sha256}): install the same gmt_ase and model on the workers"
                )
            yield tag, results
    finally:
        for _, future in pending:  # an interrupted run leaves no work behind on the cluster
            if future is not None:
                future.cancel()


def predict_on_cluster(
    structures: Iterable[Any],
    scheduler: Any,
    *,
    model: str | os.PathLike = "default",
    batch_size: int = 64,
    symprec: float = DEFAULT_SYMPREC,
    device: str | None = None,
    dtype: str = "float32",
    chunks_in_flight: int | None = None,
) -> Iterator[Result]:
    """Predict structures on a Dask cluster, yielding one result per structure in input order.

    The cluster counterpart of :func:`gmt_ase.predict.iter_predictions`: same results, same ``index``
    (position in ``structures``), a bad structure fails alone.

    Parameters
    ----------
    structures
        ASE ``Atoms`` or pymatgen ``Structure`` objects (any iterable, consumed a chunk at a time).
    scheduler
        A ``dask.distributed.Client``, or a scheduler address or scheduler-file path (a client is then
        opened for the duration of the iteration).
    model
        A shipped model's name or a checkpoint path that the workers can read (made absolute here); it is
        read here too, for its checksum: a worker that predicts with another model raises
        :class:`ClusterError`.
    batch_size
        Structures per chunk (one Dask task) and per model call.
    symprec
        spglib tolerance in Angstrom.
    device
        Torch device on the workers; ``None`` lets each worker take CUDA if it has it, else CPU.
    dtype
        ``"float32"`` or ``"float64"`` for the network.
    chunks_in_flight
        Chunks submitted ahead (default: two per worker thread).

    """
    from functools import partial

    from gmt_ase.inference.io import model_source, read_checkpoint_metadata

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    _, sha256 = read_checkpoint_metadata(model_source(model))  # also refuses a bad model before any task
    task = partial(
        predict_chunk,
        model=str(model_source(model)),
        device=device,
        dtype=dtype,
        symprec=float(symprec),
        batch_size=batch_size,
    )
    chunks = ((start, (chunk, start)) for start, chunk in _numbered_chunks(iter(structures), batch_size))
    client, own = connect(scheduler)
    try:
        for _, results in map_chunks(client, chunks, task, expected_sha256=sha256, chunks_in_flight=chunks_in_flight):
            yield from results
    finally:
        if own:
            client.close()


def _numbered_chunks(iterator: Iterator[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    start = 0
    while chunk := list(islice(iterator, size)):
        yield start, chunk
        start += len(chunk)
