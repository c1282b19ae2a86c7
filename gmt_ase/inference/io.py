"""Versioned, safe checkpoints: plain data loaded with ``torch.load(weights_only=True)``.

A checkpoint file is a dictionary::

    {"format": "gmt_ase-checkpoint", "format_version": 1, "name": str, "version": str,
     "config": ModelConfig.to_dict(), "targets": [...], "species": [Z, ...], "cutoff": float,
     "library_versions": {...}, "metrics": {...}, "data_hash": str, "state_dict": {...}}

This module is the one place that decides whether a ``model`` argument names a shipped model or a file
(:func:`is_model_name`, :func:`model_source`, :func:`resolve_model_path`). Shipped models live in
``gmt_ase/models/<name>.pt`` next to ``<name>.json`` (the model card), which
records the file's sha256; loading a shipped model verifies it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gmt_ase._version import __version__
from gmt_ase.core.tensors import MODEL_TARGETS as OUTPUT_KEYS  # = gmt_ase.nn.model.OUTPUT_KEYS, without importing e3nn

if TYPE_CHECKING:  # the network (and e3nn, ~2-3 s to import) is imported only to build one
    from gmt_ase.nn.model import GMTEnsemble, GMTNet, ModelConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "CheckpointError",
    "LoadedCheckpoint",
    "checkpoint_card",
    "file_sha256",
    "is_model_name",
    "library_versions",
    "shipped_card",
    "load_checkpoint",
    "make_test_checkpoint",
    "model_reference",
    "model_source",
    "read_checkpoint_metadata",
    "resolve_model_path",
    "save_atomically",
    "save_checkpoint",
    "shipped_model_names",
]

CHECKPOINT_FORMAT = "gmt_ase-checkpoint"
FORMAT_VERSION = 2  # 2: optional "ensemble_size" (several members under one configuration)
_REQUIRED_KEYS = ("format", "format_version", "config", "targets", "species", "cutoff", "state_dict")


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, truncated, foreign or does not match this code."""


class LoadedCheckpoint:
    """A model with its metadata, as read from a checkpoint file.

    Attributes
    ----------
    model
        The network in evaluation mode.
    metadata
        Every checkpoint entry except the weights.
    sha256
        Hex digest of the file.
    path
        Where it was read from.
    """

    def __init__(self, model: GMTNet | GMTEnsemble, metadata: dict[str, Any], sha256: str, path: Path) -> None:
        self.model = model
        self.metadata = metadata
        self.sha256 = sha256
        self.path = path

    @property
    def species(self) -> frozenset[int]:
        """Atomic numbers seen in training."""
        return frozenset(int(z) for z in self.metadata["species"])

    @property
    def cutoff(self) -> float:
        """Neighbour cutoff, Angstrom."""
        return float(self.metadata["cutoff"])


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a checkpoint's numbers."""
    import e3nn

    return {
        "gmt_ase": __version__,
        "torch": str(torch.__version__),
        "e3nn": str(e3nn.__version__),
        "python": platform.python_version(),
    }


def save_checkpoint(path: str | Path, model: GMTNet | GMTEnsemble, *, metadata: dict[str, Any]) -> str:
    """Write ``model`` and ``metadata`` (species, name, version, metrics, data_hash, ...) to ``path``.

    Returns
    -------
    str
        The sha256 of the written file.
    """
    if "species" not in metadata:
        raise ValueError("checkpoint metadata must list the training species")
    payload = {
        "name": "unnamed",
        "version": "0",
        "metrics": {},
        "data_hash": "",
        **metadata,
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "targets": list(OUTPUT_KEYS),
        "species": sorted(int(z) for z in metadata["species"]),
        "cutoff": float(model.config.cutoff),
        "ensemble_size": len(model.members) if hasattr(model, "members") else 1,
        "library_versions": library_versions(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_atomically(payload, path)
    return file_sha256(path)


def save_atomically(payload: Any, path: str | Path) -> None:
    """Write ``payload`` with ``torch.save`` to a temporary file beside ``path``, then rename it.

    An interrupted save never leaves a truncated file.
    """
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def shipped_model_names() -> list[str]:
    """Names of the models shipped with gmt_ase (``"default"``, ``"fast"``, ...)."""
    package = resources.files("gmt_ase.models")
    return sorted(p.name[:-5] for p in package.iterdir() if p.name.endswith(".json") and _is_card(p.read_text()))


def _is_card(text: str) -> bool:
    """Whether a JSON text is a model card (it names the checkpoint file), not other package data."""
    try:
        card = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(card, dict) and "file" in card and "sha256" in card


def is_model_name(model: str | os.PathLike) -> bool:
    """Whether ``model`` is spelled as a model name: a bare word, no folder and no file extension.

    Such a string always means a shipped model, even if a file of that name exists in the working
    directory (write ``./fast`` for the file).
    """
    return isinstance(model, str) and bool(model) and not Path(model).suffix and Path(model).name == model


def model_source(model: str | os.PathLike) -> str | Path:
    """Return a shipped-model name as it is (see :func:`is_model_name`), a path as an absolute ``Path``.

    A bare name such as ``"fast"`` is the shipped model even if a file of that name is in the working
    directory; ``"./fast"`` or ``Path("fast")`` is the file.
    """
    if is_model_name(model):
        return str(model)
    return Path(model).expanduser().resolve()


def model_reference(model: str | os.PathLike) -> str:
    """Return ``model`` as a string that keeps its meaning (``Path("fast")`` becomes ``./fast``)."""
    text = os.fspath(model)
    if not isinstance(model, str) and Path(text).name == text:
        return os.path.join(os.curdir, text)
    return text


def _shipped_card(name: str) -> dict[str, Any]:
    card_file = resources.files("gmt_ase.models").joinpath(f"{name}.json")
    if not card_file.is_file() or not _is_card(card_file.read_text()):
        hint = f" (for the file of that name write ./{name})" if Path(name).is_file() else ""
        raise CheckpointError(f"no shipped model named {name!r}; available: {shipped_model_names()}{hint}")
    return json.loads(card_file.read_text())


def shipped_card(name: str) -> dict[str, Any]:
    """Return the release card (``gmt_ase/models/<name>.json``) of a shipped model.

    Raises
    ------
    CheckpointError
        If no shipped model has that name.

    """
    return _shipped_card(name)


def resolve_model_path(model: str | Path) -> tuple[Path, str | None]:
    """Return the checkpoint path and its expected sha256 (shipped models only).

    A bare name (see :func:`is_model_name`) is a shipped model; anything else is a path.
    """
    if is_model_name(model):
        card = _shipped_card(str(model))
        return Path(str(resources.files("gmt_ase.models").joinpath(card["file"]))), card["sha256"]
    return Path(model), None


def checkpoint_card(metadata: dict[str, Any], sha256: str) -> dict[str, Any]:
    """Model card of a checkpoint: name, version, checksum, library versions, metrics, training details."""
    keys = ("name", "version", "metrics", "data_hash", "library_versions", "species", "cutoff", "training")
    card = {k: metadata[k] for k in keys if k in metadata}
    card["sha256"] = sha256
    card["gmt_ase_version"] = metadata.get("library_versions", {}).get("gmt_ase")
    return card


def _read_payload(model: str | Path, map_location: str | torch.device) -> tuple[dict[str, Any], str, Path]:
    """Resolve, verify and read a checkpoint without building its network: (payload, sha256, path)."""
    path, expected_sha = resolve_model_path(model)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    sha = file_sha256(path)
    if expected_sha is not None and sha != expected_sha:
        raise CheckpointError(f"checksum mismatch for {path}: expected {expected_sha}, got {sha}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt, truncated or unsafe files
        raise CheckpointError(f"{path} is not a readable gmt_ase checkpoint (corrupt or truncated?): {err}") from err
    _check_payload(payload, path)
    if expected_sha is not None:  # a shipped model is known by its released name and version (its card)
        card = _shipped_card(str(model))
        payload = {**payload, "name": str(model), "version": str(card.get("version", payload.get("version")))}
    return payload, sha, path


def read_checkpoint_metadata(model: str | Path = "default") -> tuple[dict[str, Any], str]:
    """Verify and read a checkpoint's metadata without building the network: (metadata, sha256).

    Raises
    ------
    CheckpointError
        As :func:`load_checkpoint`, except that weights are not checked against the configuration.
    """
    payload, sha, _ = _read_payload(model, "cpu")
    return {k: v for k, v in payload.items() if k != "state_dict"}, sha


def load_checkpoint(model: str | Path = "default", map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load a shipped model by name or a checkpoint file by path, refusing anything suspicious.

    A shipped model's ``name`` and ``version`` in the metadata are those of its release (model card).

    Raises
    ------
    CheckpointError
        Missing file, checksum mismatch, unreadable/corrupt/truncated file, foreign content, newer
        format version, or weights that do not match the recorded configuration.
    """
    from gmt_ase.nn.model import GMTEnsemble, GMTNet, ModelConfig

    payload, sha, path = _read_payload(model, map_location)
    try:
        config = ModelConfig.from_dict(payload["config"])
        size = int(payload.get("ensemble_size", 1))
        net = GMTNet(config) if size == 1 else GMTEnsemble(config, size)
        net.load_state_dict(payload["state_dict"], strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"{path}: weights do not match the recorded model configuration (written by another gmt_ase "
            f"architecture?): {err}"
        ) from err
    net.eval()
    metadata = {k: v for k, v in payload.items() if k != "state_dict"}
    return LoadedCheckpoint(net, metadata, sha, path)


def _check_payload(payload: Any, path: Path) -> None:
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a gmt_ase checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    missing = [k for k in _REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path} is missing checkpoint entries {missing}")
    try:
        version = int(payload["format_version"])
        targets = list(payload["targets"])
        cutoff = float(payload["cutoff"])
        config_cutoff = float(dict(payload["config"]).get("cutoff", -1))
        species = [int(z) for z in payload["species"]]
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has malformed checkpoint entries: {err}") from err
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {version}; this gmt_ase reads up to {FORMAT_VERSION}")
    if targets != list(OUTPUT_KEYS):
        raise CheckpointError(f"{path} predicts {targets}, expected {list(OUTPUT_KEYS)}")
    if cutoff != config_cutoff:
        raise CheckpointError(f"{path}: cutoff entry {cutoff} disagrees with the model configuration")
    if not species or not all(1 <= z <= 118 for z in species):
        raise CheckpointError(f"{path}: species must be a non-empty list of atomic numbers, got {species[:5]}")
    if not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path}: state_dict entry is not a dictionary of tensors")


def tiny_model_config() -> ModelConfig:
    """Return the :class:`~gmt_ase.nn.model.ModelConfig` of :func:`make_test_checkpoint` (a tiny network)."""
    from gmt_ase.nn.model import ModelConfig

    return ModelConfig(
        scalar_dim=16,
        invariant_layers=1,
        density_channels=(4, 4, 4, 2, 2),
        hidden_irreps="8x0e+4x1o+4x2e+2x2o+2x3o+2x4e",
        product_irreps="2x0e+2x1o+2x2e+1x3o+1x4e",
        head_irreps="4x0e+2x1o+2x2e+2x2o+2x3o+2x4e",
    )


def make_test_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny, seeded, **untrained** model covering elements 1-94 (for fast tests only)."""
    from gmt_ase.nn.model import GMTNet

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        net = GMTNet(tiny_model_config())
    finally:
        torch.random.set_rng_state(generator_state)
    save_checkpoint(path, net, metadata={"name": "test-tiny", "version": "0", "species": range(1, 95)})
    return Path(path)
