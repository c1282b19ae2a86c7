"""Output documents of the gmt_ase workflows: pydantic models holding plain lists and numbers only.

Conventions shared by every document:

* Tensors are nested lists in the Cartesian frame of the document's ``structure``; piezoelectric (3x6)
  and elastic (6x6) matrices use pymatgen's Voigt order xx yy zz yz xz xy without Voigt factors.
* Units: dielectric tensors are dimensionless, the piezoelectric stress tensor ``e_iJ`` is in C/m^2, the
  stiffness ``C_IJ`` in GPa (:data:`TENSOR_UNITS`); derived quantities carry the units of
  ``gmt_ase.core.derived.DERIVED_UNITS``.
* ``index`` is the position of the structure in the list given to the flow, so results from different
  chunks (jobs) can be merged and traced back.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer
from pymatgen.core import Structure

from gmt_ase.results import TENSOR_UNITS

__all__ = [
    "TENSOR_FIELDS",
    "TENSOR_UNITS",
    "ComparisonDocument",
    "ModelProvenance",
    "PrescreenDocument",
    "PredictionSymmetry",
    "StructureField",
    "TensorComparison",
    "TensorPredictionDocument",
]

TENSOR_FIELDS: tuple[str, ...] = tuple(TENSOR_UNITS)

Matrix = list[list[float]]


def _to_structure(value: Any) -> Any:
    return Structure.from_dict(value) if isinstance(value, dict) else value


#: A pymatgen ``Structure`` that serialises to its ``as_dict()`` (so ``model_dump_json`` works too).
StructureField = Annotated[
    Structure,
    BeforeValidator(_to_structure),
    PlainSerializer(lambda structure: structure.as_dict(), return_type=dict),
]


class ModelProvenance(BaseModel):
    """Which model produced a prediction, and with which settings."""

    model: str = Field(description="Model setting given to the maker: 'default' or a checkpoint path.")
    model_name: str | None = Field(None, description="Name stored in the checkpoint's model card.")
    model_version: str | None = Field(None, description="Version stored in the checkpoint's model card.")
    checkpoint_sha256: str | None = Field(None, description="sha256 of the checkpoint weights.")
    gmt_ase_version: str | None = Field(None, description="gmt_ase version that ran the prediction.")
    device: str | None = Field(None, description="Torch device requested (None: CUDA if available).")
    dtype: str = Field("float32", description="Network dtype; tensors are always reported in float64.")
    symprec: float = Field(description="spglib tolerance (Angstrom) of the symmetry projection.")


class PredictionSymmetry(BaseModel):
    """Symmetry detected by gmt_ase's projector for the predicted structure."""

    space_group_symbol: str
    space_group_number: int
    point_group: str
    symprec: float
    n_operations: int


class TensorPredictionDocument(BaseModel):
    """GMTNet prediction (or failure) for one structure.

    A successful prediction has ``ok=True``, the requested tensors, ``derived`` and ``symmetry``; a
    failed one has ``ok=False`` and ``error_type``/``error`` set, its tensors left ``None``.
    """

    index: int = Field(description="Position of the structure in the flow's input list.")
    label: str | None = Field(None, description="Optional user label (e.g. a Materials Project id).")
    structure: StructureField | None = Field(
        None, description="Input structure; every tensor is in its Cartesian frame."
    )
    formula: str | None = Field(None, description="Reduced formula of the structure.")
    ok: bool = Field(description="True if the prediction succeeded.")
    dielectric_electronic: Matrix | None = Field(None, description="eps_inf (3x3), dimensionless.")
    dielectric_ionic: Matrix | None = Field(None, description="Ionic dielectric tensor (3x3).")
    dielectric_total: Matrix | None = Field(None, description="Electronic + ionic (3x3).")
    piezoelectric: Matrix | None = Field(None, description="Piezo stress tensor e_iJ (3x6), C/m^2.")
    elastic: Matrix | None = Field(None, description="Stiffness C_IJ (6x6), GPa.")
    derived: dict[str, Any] | None = Field(
        None, description="Derived quantities (k_vrh, g_vrh [GPa], eps means, eij_max [C/m^2], ...)."
    )
    symmetry: PredictionSymmetry | None = Field(None, description="Detected symmetry.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Applicability warnings (metallic, vacuum, compressed, rare elements, outputs out of "
        "training range): short sentences, empty when all is well (see gmt_ase.invariant.applicability).",
    )
    uncertainty: dict[str, Any] | None = Field(
        None,
        description="One standard deviation per tensor component ('<tensor>_std', same Voigt form and units as "
        "the tensor) and per derived scalar ('k_vrh_std', 'g_vrh_std' [GPa], 'eps_electronic_mean_std', "
        "'eps_total_mean_std', 'eij_max_std' [C/m^2]); None when the model has no calibrated spread.",
    )
    uncertainty_note: str | None = Field(
        None, description="Why there is no uncertainty (never zeros), None when there is one."
    )
    error_type: str | None = Field(None, description="Exception class name if the prediction failed.")
    error: str | None = Field(None, description="Error message if the prediction failed.")
    units: dict[str, str] = Field(default_factory=lambda: dict(TENSOR_UNITS))
    frame: str = Field(
        "Cartesian frame of `structure`; Voigt order xx yy zz yz xz xy (pymatgen), no Voigt factors",
        description="Frame and Voigt convention of every tensor.",
    )
    provenance: ModelProvenance | None = Field(None, description="Model and settings used.")

    @classmethod
    def from_result(
        cls,
        result: Any,
        structure: Structure | None,
        index: int,
        provenance: ModelProvenance,
        tensors: tuple[str, ...] = TENSOR_FIELDS,
        label: str | None = None,
    ) -> TensorPredictionDocument:
        """Build a document from a ``TensorPrediction`` or ``PredictionFailure`` of the calculator API.

        Parameters
        ----------
        result
            One element of ``GMTCalculator.predict``'s output.
        structure
            The structure that was predicted (stored in the document).
        index
            Position of the structure in the flow's input list (overrides ``result.index``).
        provenance
            Model and settings.
        tensors
            Tensor fields to keep; the others are left ``None``.
        label
            Optional user label.

        """
        common = {
            "index": int(index),
            "label": label,
            "structure": structure,
            "formula": structure.composition.reduced_formula if structure is not None else None,
            "provenance": provenance,
        }
        if not result.ok:
            return cls(ok=False, error_type=result.error_type, error=result.message, **common)
        values = {name: getattr(result, name).tolist() for name in tensors}
        dropped = {f"{name}_std" for name in TENSOR_FIELDS if name not in tensors}
        uncertainty = result.to_dict()["uncertainty"] if result.uncertainty is not None else None
        if uncertainty is not None:
            uncertainty = {key: value for key, value in uncertainty.items() if key not in dropped}
        return cls(
            ok=True,
            derived=dict(result.derived),
            symmetry=PredictionSymmetry(**result.symmetry),
            warnings=list(result.warnings),
            uncertainty=uncertainty,
            uncertainty_note=result.uncertainty_note,
            **values,
            **common,
        )

    @classmethod
    def failure(
        cls, index: int, error: BaseException, provenance: ModelProvenance, label: str | None = None
    ) -> TensorPredictionDocument:
        """Document for an input that could not even be handed to the calculator."""
        return cls(
            index=int(index),
            label=label,
            ok=False,
            error_type=type(error).__name__,
            error=str(error),
            provenance=provenance,
        )


class TensorComparison(BaseModel):
    """ML and DFT values of one tensor, both projected onto the same point group in the same frame."""

    name: str = Field(description="Tensor field name, e.g. 'elastic'.")
    unit: str
    ml: Matrix = Field(description="Symmetrised ML tensor (Voigt form).")
    dft: Matrix = Field(description="Symmetrised DFT tensor (Voigt form), rotated into the ML frame.")
    fnorm: float = Field(description="||ML - DFT||_F on the Voigt arrays (GMTNet's 'Fnorm').")
    relative_error: float | None = Field(None, description="fnorm / ||DFT||_F (None if DFT is zero).")


class ComparisonDocument(BaseModel):
    """ML prediction beside the expensive (DFT or force-field) result for one structure and stage."""

    index: int
    label: str | None = None
    formula: str | None = None
    stage: str = Field(description="Name of the expensive stage (key of `expensive_makers`).")
    ok: bool = Field(description="False if the DFT result was missing or could not be read.")
    error: str | None = None
    frame: str | None = Field(None, description="Frame used for the tensor comparison.")
    rotation: Matrix | None = Field(
        None, description="Rotation R applied to the DFT tensors (R = I when the DFT kept the orientation)."
    )
    tensors: list[TensorComparison] = Field(default_factory=list)
    scalars: dict[str, dict[str, float | None]] = Field(
        default_factory=dict, description="name -> {'ml', 'dft', 'abs_error'} for K_VRH, G_VRH, eps means."
    )


class PrescreenDocument(BaseModel):
    """Summary of a prescreen: what was predicted, what was selected and how ML compared with DFT."""

    n_structures: int
    n_failed: int
    failures: list[dict[str, Any]] = Field(
        default_factory=list, description="{'index', 'label', 'error_type', 'error'} per failed structure."
    )
    criteria: dict[str, Any] | None = None
    top_k: int | None = None
    rank_by: str | None = None
    selected_indices: list[int] = Field(default_factory=list)
    selected: list[TensorPredictionDocument] = Field(
        default_factory=list, description="Predictions of the selected structures."
    )
    stages: list[str] = Field(default_factory=list, description="Expensive stages run on the selection.")
    comparisons: list[ComparisonDocument] = Field(default_factory=list)
    provenance: ModelProvenance | None = None
