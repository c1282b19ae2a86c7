"""Array-level batched inference: the bridge between checkpoints and the calculator.

No ASE or pymatgen objects here: callers pass plain arrays (:class:`gmt_ase.graph.crystal.CrystalInput`,
importable from here too) and receive float64 Cartesian tensors that satisfy the given point-group operations
exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmt_ase.core.derived import longitudinal_max_of_full
from gmt_ase.core.symmetry import reynolds_projection
from gmt_ase.graph.crystal import CrystalInput
from gmt_ase.graph.crystal_graph import CrystalGraph, build_graph, collate, crystal_graph, padded_operations
from gmt_ase.graph.pseudosymmetry import CENTROSYMMETRY_DISTANCE
from gmt_ase.inference.crystal_spread import add_crystal_spreads
from gmt_ase.inference.io import checkpoint_card, load_checkpoint
from gmt_ase.inference.members import capture_member_outputs
from gmt_ase.invariant.equilibrium_volume import ELASTIC_INVARIANTS, EquilibriumVolume, scaled_to_volume
from gmt_ase.invariant.invariant_model import (
    INVARIANTS,
    PIEZO_MAGNITUDE,
    PIEZO_ZERO,
    InvariantModel,
    blend_invariants,
    network_invariants,
)
from gmt_ase.invariant.piezo_onset import piezo_onset_factor
from gmt_ase.invariant.piezo_prototypes import PiezoPrototypes, bond_tensors
from gmt_ase.invariant.uncertainty import allowed_components, prediction_uncertainty, validate_calibration
from gmt_ase.nn.fused_product import fuse_self_products
from gmt_ase.nn.model import OUTPUT_KEYS

__all__ = ["CrystalInput", "TensorPredictor"]


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TensorPredictor:
    """A loaded model that predicts all tensors for batches of crystals.

    Parameters
    ----------
    model
        The network (:class:`gmt_ase.nn.model.GMTNet`).
    metadata
        Checkpoint metadata (species, cutoff, name, version, metrics, ...).
    sha256
        Checksum of the checkpoint file.
    device, dtype
        Where and in which precision to run. Nothing global is changed.
    copy_model
        Work on a private copy of ``model`` (default), so that moving it to ``device``/``dtype`` never
        changes the caller's module; ``False`` takes over a module nobody else holds (a fresh load).

    Attributes
    ----------
    model
        The inference copy: on ``device`` in ``dtype``, in eval mode, with its self tensor products frozen
        into matrix products (:func:`gmt_ase.nn.fused_product.fuse_self_products`). It predicts exactly
        what the checkpoint's network does but holds no trainable product weights: train or save the
        loaded checkpoint's model, never this one.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        metadata: dict[str, Any],
        sha256: str,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
        *,
        copy_model: bool = True,
    ) -> None:
        self.device = torch.device(device) if device is not None else _default_device()
        self.dtype = dtype
        # A private copy: moving the caller's module in place would change it under their feet.
        model = copy.deepcopy(model) if copy_model else model
        # the self tensor products frozen into matrix products: the same map, three times faster
        self.model = fuse_self_products(model.to(device=self.device, dtype=dtype).eval())
        self.metadata = metadata
        self.sha256 = sha256
        self.species = frozenset(int(z) for z in metadata["species"])
        self.cutoff = float(metadata["cutoff"])
        invariant_data = metadata.get("invariant_model")
        self.invariant_model = InvariantModel.from_dict(invariant_data) if invariant_data is not None else None
        prototype_data = metadata.get("piezo_prototypes")
        if prototype_data is not None and self.invariant_model is None:
            raise ValueError("a checkpoint with piezo prototypes needs an invariant model (descriptors and norms)")
        self.piezo_prototypes = PiezoPrototypes.from_dict(prototype_data) if prototype_data is not None else None
        volume_data = metadata.get("equilibrium_volume")
        if volume_data is not None and self.invariant_model is None:
            raise ValueError("a checkpoint with an equilibrium-volume model needs an invariant model")
        self.equilibrium_volume = EquilibriumVolume.from_dict(volume_data) if volume_data is not None else None
        calibration = metadata.get("uncertainty")
        self.calibration = validate_calibration(calibration) if calibration is not None else None

    @classmethod
    def from_checkpoint(
        cls,
        model: str | Path = "default",
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> TensorPredictor:
        """Load a shipped model by name (``"default"``) or a checkpoint file by path."""
        loaded = load_checkpoint(model)  # a shipped model's name and version are those of its card
        return cls(loaded.model, dict(loaded.metadata), loaded.sha256, device=device, dtype=dtype, copy_model=False)

    @property
    def card(self) -> dict[str, Any]:
        """Model card: name, version, checksum, versions, metrics and training details."""
        return checkpoint_card(self.metadata, self.sha256)

    def graphs(self, crystals: Sequence[CrystalInput]) -> list[CrystalGraph]:
        """Neighbour graphs at the model's cutoff."""
        return [crystal_graph(crystal, self.cutoff) for crystal in crystals]

    @torch.no_grad()
    def predict(self, crystals: Sequence[CrystalInput], batch_size: int = 64) -> list[dict[str, np.ndarray]]:
        """Predict every target for every crystal.

        Returns
        -------
        list of dict
            Per crystal: ``dielectric_electronic`` and ``dielectric_ionic`` (3, 3),
            ``piezoelectric`` (3, 3, 3) C/m^2 and ``elastic`` (3, 3, 3, 3) GPa, float64 Cartesian,
            projected onto the crystal's operations in float64 (exact to ~1e-15); ``uncertainty`` with a
            calibrated model; ``piezo_prototype`` (material id) when a piezoelectric prototype set the
            piezo tensor's direction, and ``piezo_prototype_distance`` (``inf``: no prototype) for every
            non-zero piezo tensor of a model with prototypes; ``centrosymmetry_distance`` (Angstrom, RMS
            displacement to the nearest centrosymmetric arrangement) with every non-zero piezo tensor of a model
            with an invariant layer.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        results: list[dict[str, np.ndarray]] = []
        for start in range(0, len(crystals), batch_size):
            chunk = crystals[start : start + batch_size]
            graphs = self.graphs(chunk)
            batch = collate(graphs, dtype=self.dtype)
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with capture_member_outputs(self.model) as members:
                outputs = self.model(batch)
            keys = (*OUTPUT_KEYS, PIEZO_MAGNITUDE)
            arrays = {k: outputs[k].detach().to("cpu", torch.float64).numpy() for k in keys}
            tensors = [{k: arrays[k][b] for k in keys} for b in range(len(chunk))]
            descriptors = None  # the invariant model's columns, shared with the per-crystal spreads
            if self.invariant_model is not None:
                tensors, descriptors = _rescale_to_invariants(
                    self.invariant_model, chunk, graphs, tensors, self.piezo_prototypes, self.equilibrium_volume
                )
            for crystal, raw in zip(chunk, tensors, strict=True):  # grow from zero away from centrosymmetry
                if np.linalg.norm(raw["piezoelectric"]) > PIEZO_ZERO:
                    factor, raw[CENTROSYMMETRY_DISTANCE] = piezo_onset_factor(
                        crystal.cell, crystal.positions, crystal.numbers
                    )
                    raw["piezoelectric"] = raw["piezoelectric"] * factor
            chunk_results = self._symmetrised(chunk, tensors)
            add_crystal_spreads(self, chunk, graphs, members, chunk_results, descriptors)  # if calibrated
            results.extend(chunk_results)
            if self.invariant_model is None:  # the network's own magnitude, for training the invariant model
                for result, raw in zip(results[-len(chunk) :], tensors, strict=True):
                    result[PIEZO_MAGNITUDE] = float(raw[PIEZO_MAGNITUDE])
        return results

    def _symmetrised(self, chunk: Sequence[CrystalInput], tensors: list[dict[str, np.ndarray]]) -> list[dict]:
        """Project a chunk's tensors onto each crystal's operations at once, in float64; add uncertainties."""
        for crystal, raw in zip(chunk, tensors, strict=True):
            # Like atoms exchange no charge: an elemental solid's Born charges vanish (exactly when all atoms
            # are equivalent: diamond, fcc, bcc, hcp), and so does its ionic dielectric part. Keyed on the
            # composition, not on detected symmetry, so a rattle cannot switch it on.
            if np.all(crystal.numbers == crystal.numbers[0]):
                raw["dielectric_ionic"] = np.zeros((3, 3))
        ops, weights = padded_operations([crystal.operations for crystal in chunk])
        stacked = {k: np.stack([raw[k] for raw in tensors]) for k in OUTPUT_KEYS}
        projected = {k: reynolds_projection(v, ops, weights, rank=v.ndim - 1) for k, v in stacked.items()}
        ranks = {v.ndim - 1 for v in stacked.values()}
        masks = {rank: allowed_components(ops, rank, weights) for rank in ranks} if self.calibration is not None else {}
        results = []
        for b, (crystal, raw) in enumerate(zip(chunk, tensors, strict=True)):
            final = {k: projected[k][b] for k in OUTPUT_KEYS}
            if self.calibration is not None:
                operations = np.asarray(crystal.operations, dtype=np.float64)
                crystal_masks = {rank: mask[b] for rank, mask in masks.items()}
                final["uncertainty"] = _uncertainty(final, operations, self.calibration, crystal_masks)
            for key in ("piezo_prototype", "piezo_prototype_distance", CENTROSYMMETRY_DISTANCE):
                if key in raw:
                    final[key] = raw[key]
            results.append(final)
        return results


def _uncertainty(
    tensors: dict[str, np.ndarray], operations: np.ndarray, calibration: dict, masks: dict[int, np.ndarray]
) -> dict:
    """Calibrated one-sigma uncertainties of one crystal's final tensors (``masks``: allowed components)."""
    piezo = tensors["piezoelectric"]
    eij_max = longitudinal_max_of_full(piezo)[0]  # refined: the sigma is as frame-independent as the value
    return prediction_uncertainty(tensors, network_invariants(tensors), eij_max, operations, calibration, masks)


def _rescale_to_invariants(
    model: InvariantModel,
    chunk: Sequence[CrystalInput],
    graphs: Sequence[CrystalGraph],
    tensors: list[dict[str, np.ndarray]],
    prototypes: PiezoPrototypes | None = None,
    volume: EquilibriumVolume | None = None,
) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """Rescale the network's tensors to the invariant model's moduli, means and norms (isotropic maps).

    Returns the rescaled tensors and the chunk's descriptors (the model's columns).

    With ``volume``, the elastic invariants follow its equation of state (:func:`_moduli_on_equation_of_state`).

    With ``prototypes``, a piezoelectric tensor that is not zero by symmetry takes the direction of the
    nearest prototype of its space group (:mod:`gmt_ase.invariant.piezo_prototypes`) where there is one.
    """
    own = [blend_invariants(t) for t in tensors]
    descriptors = model.all_descriptors(graphs, [c.cell for c in chunk])
    columns = model.columns(descriptors)
    if volume is None:
        invariants = model.predict(columns, own)
    else:
        elastic = [name for name in ELASTIC_INVARIANTS if name in model.targets]
        invariants = model.predict(columns, own, [name for name in model.targets if name not in elastic])
        moduli = _moduli_on_equation_of_state(model, volume, chunk, descriptors, own, elastic)
        for values, carried in zip(invariants, moduli, strict=True):
            values.update(carried)
    out = [model.apply(t, inv, o) for t, inv, o in zip(tensors, invariants, own, strict=True)]
    if prototypes is None:
        return out, columns
    for k, (crystal, graph, rescaled) in enumerate(zip(chunk, graphs, out, strict=True)):
        if own[k]["piezo_norm"] <= PIEZO_ZERO:
            continue
        transferred = prototypes.predict(
            descriptors[k],
            crystal.space_group_number,
            crystal.standard_rotation,
            crystal.standard_lattice,
            np.asarray(crystal.operations, dtype=np.float64),
            bond_tensors(graph.numbers, graph.edge_index, graph.edge_vec, model.table),
            invariants[k]["piezo_norm"],
            reference=rescaled["piezoelectric"],
        )
        if transferred is None:
            rescaled["piezo_prototype_distance"] = float("inf")
        else:
            rescaled["piezoelectric"], rescaled["piezo_prototype"], rescaled["piezo_prototype_distance"] = transferred
    return out, columns


def _moduli_on_equation_of_state(
    model: InvariantModel,
    volume: EquilibriumVolume,
    chunk: Sequence[CrystalInput],
    descriptors: np.ndarray,
    own: Sequence[dict[str, float]],
    names: Sequence[str],
) -> list[dict[str, float]]:
    """Elastic invariants read at each crystal's zero-pressure volume and carried to its own by Murnaghan.

    ``descriptors`` are the chunk's (every column); the crystals are scaled uniformly to the predicted ``V0``
    (:mod:`gmt_ase.invariant.equilibrium_volume`), described again, and the trees' moduli there are multiplied
    by ``(V0 / V) ** K'0``. A hydrostatic strain of the input changes only that factor.
    """
    if any(INVARIANTS[name] != 0.0 for name in names):
        raise ValueError(f"the equation of state scales moduli without an offset, not {list(names)}")
    log_ratio = volume.log_volume_ratio(descriptors)
    graphs, cells = [], []
    for crystal, ratio in zip(chunk, log_ratio, strict=True):
        positions, cell = scaled_to_volume(crystal.positions, crystal.cell, ratio)
        graphs.append(build_graph(crystal.numbers, positions, cell, crystal.operations, model.cutoff))
        cells.append(cell)
    at_zero_pressure = model.predict(model.descriptors(graphs, cells), own, names)
    factors = volume.modulus_factor(log_ratio)
    return [{name: value * factor for name, value in moduli.items()}
            for moduli, factor in zip(at_zero_pressure, factors, strict=True)]
