"""jobflow makers: GMTNet tensor prediction, and a cheap EMT elastic job that stands in for DFT in demos.

Makers are dataclasses of serialisable settings; the model is loaded inside the job, through a
module-level cache keyed by those settings, so a worker running many prediction jobs loads it once.
Only the public calculator API of gmt_ase is used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from jobflow import Job, Maker, job

from gmt_ase.core.symmetry import DEFAULT_SYMPREC

from .schemas import TENSOR_FIELDS, ModelProvenance, TensorPredictionDocument

if TYPE_CHECKING:
    from pymatgen.core import Structure

    from gmt_ase import GMTCalculator

__all__ = [
    "EMTElasticMaker",
    "TensorPredictionMaker",
    "as_structure",
    "clear_calculator_cache",
    "get_calculator",
]

_CALCULATORS: dict[tuple[Any, ...], GMTCalculator] = {}
_LOCK = threading.Lock()
EV_PER_A3_TO_GPA = 160.21766208


def get_calculator(
    model: str = "default", device: str | None = None, dtype: str = "float32", symprec: float = DEFAULT_SYMPREC
) -> GMTCalculator:
    """Return a ``GMTCalculator`` for these settings, created once per process and then reused."""
    from gmt_ase import GMTCalculator

    key = (str(model), device, str(dtype), float(symprec))
    with _LOCK:
        if key not in _CALCULATORS:
            _CALCULATORS[key] = GMTCalculator(model=model, device=device, dtype=dtype, symprec=symprec)
        return _CALCULATORS[key]


def clear_calculator_cache() -> None:
    """Forget the cached calculators (e.g. after a checkpoint file was rewritten)."""
    with _LOCK:
        _CALCULATORS.clear()


def as_structure(structure: Any) -> Structure:
    """Return a pymatgen ``Structure`` for a ``Structure``, an ASE ``Atoms`` or a ``Structure.as_dict()``."""
    from pymatgen.core import Structure

    if isinstance(structure, Structure):
        return structure
    if isinstance(structure, dict):
        return Structure.from_dict(structure)
    if hasattr(structure, "get_cell") and hasattr(structure, "get_positions"):
        from pymatgen.io.ase import AseAtomsAdaptor

        return AseAtomsAdaptor.get_structure(structure)
    raise TypeError(f"expected a pymatgen Structure or ase Atoms, got {type(structure).__name__}")


def _is_single(structures: Any) -> bool:
    return isinstance(structures, dict) or hasattr(structures, "lattice") or hasattr(structures, "get_cell")


@dataclass
class TensorPredictionMaker(Maker):
    """Predict dielectric, piezoelectric and elastic tensors with GMTNet for one or many structures.

    Parameters
    ----------
    name
        Job name.
    model
        ``"default"`` (the model shipped with gmt_ase) or the path of a checkpoint file; the path must be
        readable on the worker that runs the job.
    symprec
        spglib tolerance in Angstrom of the symmetry projection.
    batch_size
        Structures per model call.
    tensors
        Tensor fields kept in the documents (subset of ``dielectric_electronic``, ``dielectric_ionic``,
        ``dielectric_total``, ``piezoelectric``, ``elastic``). Derived quantities are always kept.
    device
        Torch device (``None``: CUDA if available, else CPU).
    dtype
        Network dtype, ``"float32"`` or ``"float64"``.

    """

    name: str = "gmt tensor prediction"
    model: str = "default"
    symprec: float = DEFAULT_SYMPREC
    batch_size: int = 64
    tensors: tuple[str, ...] = TENSOR_FIELDS
    device: str | None = None
    dtype: str = "float32"

    def __post_init__(self) -> None:
        self.tensors = tuple(self.tensors)
        unknown = sorted(set(self.tensors) - set(TENSOR_FIELDS))
        if unknown:
            raise ValueError(f"unknown tensors {unknown}; choose from {list(TENSOR_FIELDS)}")
        if int(self.batch_size) < 1 or not float(self.symprec) > 0:
            raise ValueError(f"need batch_size >= 1 and symprec > 0, got {self.batch_size}, {self.symprec}")
        self.model = str(self.model)

    def make(
        self,
        structures: Structure | Sequence[Structure],
        indices: Sequence[int] | None = None,
        labels: Sequence[str | None] | None = None,
    ) -> Job:
        """Return a job predicting tensors: one document per structure (one document for one structure).

        Parameters
        ----------
        structures
            A pymatgen ``Structure`` or ASE ``Atoms`` (converted to a ``Structure`` here, so that the job
            input serialises), or a list of them.
        indices
            Positions of the structures in a larger list (default ``0..n-1``); stored as ``doc.index``.
        labels
            Optional labels stored with the documents.

        """
        single = _is_single(structures)
        items = [as_structure(item) for item in ([structures] if single else structures)]
        indices = list(range(len(items))) if indices is None else [int(i) for i in indices]
        labels = [None] * len(items) if labels is None else list(labels)
        if not len(indices) == len(labels) == len(items):
            raise ValueError(f"got {len(items)} structures, {len(indices)} indices and {len(labels)} labels")
        return self.predict_job(items[0] if single else items, indices, labels)

    @job
    def predict_job(
        self, structures: Structure | list[Structure], indices: list[int], labels: list[str | None]
    ) -> TensorPredictionDocument | list[TensorPredictionDocument]:
        """Job body of :meth:`make` (the model is loaded here, on the worker)."""
        single = _is_single(structures)
        docs = self.predict_documents([structures] if single else list(structures), indices, labels)
        return docs[0] if single else docs

    def predict_documents(
        self, items: list[Any], indices: list[int], labels: list[str | None]
    ) -> list[TensorPredictionDocument]:
        """Run the calculator on ``items`` (no jobflow involved); an unreadable input fails alone."""
        calc = get_calculator(self.model, self.device, self.dtype, self.symprec)
        info = calc.model_info
        provenance = ModelProvenance(
            model=self.model,
            model_name=info.get("name"),
            model_version=info.get("version"),
            checkpoint_sha256=info.get("sha256"),
            gmt_ase_version=info.get("gmt_ase_version"),
            device=self.device,
            dtype=self.dtype,
            symprec=float(self.symprec),
        )
        docs: dict[int, TensorPredictionDocument] = {}
        good: list[tuple[int, Structure]] = []
        for position, item in enumerate(items):
            try:
                good.append((position, as_structure(item)))
            except Exception as error:  # noqa: BLE001 - an unreadable input fails alone
                docs[position] = TensorPredictionDocument.failure(
                    indices[position], error, provenance, labels[position]
                )
        results = calc.predict([structure for _, structure in good], batch_size=int(self.batch_size))
        for (position, structure), result in zip(good, results, strict=True):
            docs[position] = TensorPredictionDocument.from_result(
                result, structure, indices[position], provenance, self.tensors, labels[position]
            )
        return [docs[position] for position in range(len(items))]


@dataclass
class EMTElasticMaker(Maker):
    """STAND-IN for an expensive elastic calculation: stiffness from finite strains with ASE's EMT.

    EMT (effective-medium theory) only knows Al, Cu, Ag, Au, Ni, Pd, Pt (and H, C, N, O); it is a
    cheap, deterministic placeholder that lets a prescreen flow run end to end in seconds, in place of
    atomate2's VASP ``ElasticMaker``. Each of the six Voigt strains is applied as +-``strain`` (central
    differences, engineering shear strain), optionally relaxing the atoms at fixed cell.

    The output is an atomate2 ``ElasticDocument`` whose ``elastic_tensor.raw`` is in the Cartesian frame
    of the input structure (GPa, pymatgen Voigt order), like atomate2's own elastic workflows.

    Parameters
    ----------
    name
        Job name.
    strain
        Magnitude of each applied strain.
    relax_ions
        Relax the atoms at each strained cell (needed when atoms are not at centrosymmetric sites).
    fmax
        Force convergence (eV/A) of the ionic relaxations.

    """

    name: str = "emt elastic (stand-in)"
    strain: float = 5e-3
    relax_ions: bool = True
    fmax: float = 1e-4

    @job
    def make(self, structure: Structure) -> Any:
        """Fit the elastic tensor of ``structure`` and return an atomate2 ``ElasticDocument``."""
        from atomate2.common.schemas.elastic import DerivedProperties, ElasticDocument, ElasticTensorDocument
        from pymatgen.analysis.elasticity import ElasticTensor

        structure = as_structure(structure)
        voigt = self.stiffness(structure)
        tensor = ElasticTensor.from_voigt(voigt)
        derived = {"k_vrh": float(tensor.k_vrh), "g_vrh": float(tensor.g_vrh)}
        if np.all(np.linalg.eigvalsh(voigt) > 0):
            derived["universal_anisotropy"] = float(tensor.universal_anisotropy)
        return ElasticDocument(
            structure=structure,
            elastic_tensor=ElasticTensorDocument(
                raw=voigt.tolist(), ieee_format=tensor.convert_to_ieee(structure).voigt.tolist()
            ),
            derived_properties=DerivedProperties(**derived),
            fitting_method="finite_difference",
            order=2,
            warnings=["EMT stand-in for DFT: not a first-principles result"],
        )

    def stiffness(self, structure: Structure) -> np.ndarray:
        """(6, 6) stiffness in GPa, Cartesian frame of ``structure``, pymatgen Voigt order."""
        from ase.calculators.emt import EMT
        from ase.optimize import BFGS
        from pymatgen.io.ase import AseAtomsAdaptor

        from gmt_ase.core.tensors import VOIGT_PAIRS

        atoms0 = AseAtomsAdaptor.get_atoms(structure)
        cell0 = np.array(atoms0.cell[:])
        columns = []
        for i, j in VOIGT_PAIRS:
            stresses = []
            for sign in (1.0, -1.0):
                eps = np.zeros((3, 3))
                eps[i, j] += 0.5 * sign * self.strain  # engineering strain: eps_ij + eps_ji = strain
                eps[j, i] += 0.5 * sign * self.strain
                atoms = atoms0.copy()
                atoms.set_cell(cell0 @ (np.eye(3) + eps).T, scale_atoms=True)
                atoms.calc = EMT()
                if self.relax_ions and len(atoms) > 1:
                    BFGS(atoms, logfile=None).run(fmax=self.fmax, steps=200)
                stresses.append(atoms.get_stress(voigt=True))  # eV/A^3, order xx yy zz yz xz xy
            columns.append((stresses[0] - stresses[1]) / (2.0 * self.strain) * EV_PER_A3_TO_GPA)
        voigt = np.array(columns).T  # (6, 6): C_IJ = d sigma_I / d eps_J
        return 0.5 * (voigt + voigt.T)
