"""Put a GMTNet prediction beside the result of an expensive calculation (DFT or a force field).

Frame
-----
Every comparison is made in the **Cartesian frame of the structure that was given to GMTNet** (the
prediction document's ``structure``). DFT tensors are brought into that frame in two steps:

1. read in the frame of the DFT document's own structure: atomate2's ``ElasticDocument.elastic_tensor.raw``
   already is; if only ``ieee_format`` exists it is rotated back with pymatgen's
   ``ElasticTensor.get_ieee_rotation`` of that structure (IEEE-176 is a reporting frame only);
2. rotated by ``R^T``, where ``R`` is the rotation part of the polar decomposition ``F = R U`` of the
   deformation that maps the ML cell onto the DFT cell (``R = I`` when the DFT code kept the orientation,
   as VASP and ASE relaxations do; ``U`` absorbs the relaxation strain).

Both tensors are then passed through the same :func:`gmt_ase.core.symmetry.symmetrize` on the ML structure,
and compared on their Voigt arrays: ``fnorm = ||ML - DFT||_F`` and ``relative_error = fnorm / ||DFT||_F``.
If the two cells do not correspond (different number of sites, or a different lattice-vector choice
such as a conventional cell), only the frame-invariant scalars (K_VRH, G_VRH, dielectric means) are
reported and ``error`` says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gmt_ase.core.symmetry import DEFAULT_SYMPREC, symmetrize
from gmt_ase.core.tensors import full_to_voigt, vasp_to_voigt, voigt_to_full

from .schemas import TENSOR_UNITS, ComparisonDocument, TensorComparison

__all__ = [
    "compare_prediction",
    "extract_dft_tensors",
    "frame_rotation",
    "rotate_voigt",
    "scalar_summary",
    "tensor_comparison",
]

_MAX_CELL_STRAIN = 0.2


def _get(obj: Any, *path: str) -> Any:
    """Follow attributes or dict keys; None if any step is missing."""
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, (list, tuple)):
            obj = obj[int(key)] if len(obj) > int(key) else None
        else:
            obj = getattr(obj, key, None)
    return obj


def _structure(value: Any) -> Any:
    if isinstance(value, dict):
        from pymatgen.core import Structure

        return Structure.from_dict(value)
    return value


def extract_dft_tensors(output: Any) -> tuple[dict[str, np.ndarray], Any]:
    """Read tensors (Voigt, pymatgen order, DFT-structure frame) and the structure from a stage output.

    Understood outputs (objects or their dicts):

    * atomate2 ``ElasticDocument``: ``elastic_tensor.raw`` (or ``ieee_format``) in GPa, ``structure``;
    * atomate2/emmet VASP ``TaskDoc`` of a DFPT run (``DielectricMaker``): ``calcs_reversed[0].output``
      ``epsilon_static`` (electronic), ``epsilon_ionic``, and the piezoelectric tensor from
      ``dielectric_properties`` or ``outcar`` (``piezo_tensor`` + ``piezo_ionic_tensor``, VASP column order
      xx yy zz xy yz zx, converted here);
    * anything with gmt_ase tensor fields (e.g. another ``TensorPredictionDocument``) and ``structure``.

    Returns
    -------
    tensors, structure
        ``{name: Voigt array}`` using gmt_ase's field names, and the structure they refer to.

    Raises
    ------
    ValueError
        If the output is missing or holds no recognised tensor.

    """
    if output is None:
        raise ValueError("no output: the expensive calculation failed or did not run")
    if _get(output, "elastic_tensor") is not None:
        return _from_elastic_document(output)
    if _get(output, "calcs_reversed") is not None:
        return _from_task_document(output)
    tensors = {name: np.asarray(_get(output, name), float) for name in TENSOR_UNITS if _get(output, name)}
    if tensors and _get(output, "structure") is not None:
        return tensors, _structure(_get(output, "structure"))
    kind = type(output).__name__
    keys = sorted(output) if isinstance(output, dict) else sorted(getattr(output, "__dict__", {}))
    raise ValueError(
        f"cannot read tensors from a {kind} (fields {keys[:12]}): expected an atomate2 ElasticDocument "
        "(elastic_tensor.raw), a VASP TaskDoc with calcs_reversed, or gmt_ase tensor fields"
    )


def _from_elastic_document(doc: Any) -> tuple[dict[str, np.ndarray], Any]:
    from pymatgen.analysis.elasticity import ElasticTensor

    structure = _structure(_get(doc, "structure"))
    if structure is None:
        raise ValueError("elastic document has no structure: cannot place its tensor in a frame")
    raw, ieee = _get(doc, "elastic_tensor", "raw"), _get(doc, "elastic_tensor", "ieee_format")
    if raw is not None:
        voigt = np.asarray(raw, dtype=float)
    elif ieee is not None:  # rotate the IEEE-frame tensor back into the structure's frame
        rotation = ElasticTensor.get_ieee_rotation(structure)
        voigt = ElasticTensor.from_voigt(np.asarray(ieee, float)).rotate(np.asarray(rotation).T).voigt
    else:
        raise ValueError("elastic document has neither elastic_tensor.raw nor elastic_tensor.ieee_format")
    if np.asarray(voigt).shape != (6, 6):
        raise ValueError(f"elastic tensor must be 6x6 (order-2 fit), got shape {np.shape(voigt)}")
    return {"elastic": np.asarray(voigt, dtype=float)}, structure


def _from_task_document(doc: Any) -> tuple[dict[str, np.ndarray], Any]:
    out = _get(doc, "calcs_reversed", "0", "output")
    if out is None:
        raise ValueError("task document has an empty calcs_reversed: no calculation output")
    tensors: dict[str, np.ndarray] = {}
    eps_el, eps_ion = _get(out, "epsilon_static"), _get(out, "epsilon_ionic")
    if eps_el is not None:
        tensors["dielectric_electronic"] = np.asarray(eps_el, dtype=float)
    if eps_ion is not None:
        tensors["dielectric_ionic"] = np.asarray(eps_ion, dtype=float)
    if eps_el is not None and eps_ion is not None:
        tensors["dielectric_total"] = tensors["dielectric_electronic"] + tensors["dielectric_ionic"]
    piezo = _piezo_from_output(out)
    if piezo is not None:
        tensors["piezoelectric"] = piezo
    if not tensors:
        raise ValueError("task document has no epsilon_static, epsilon_ionic or piezo tensor (not DFPT?)")
    structure = _get(out, "structure") or _get(doc, "output", "structure") or _get(doc, "structure")
    structure = _structure(structure)
    if structure is None:
        raise ValueError("task document has no output structure")
    return tensors, structure


def _piezo_from_output(out: Any) -> np.ndarray | None:
    """Total (clamped-ion + ionic) piezo tensor in pymatgen order, or None."""
    for source in (_get(out, "dielectric_properties"), _get(out, "outcar")):
        electronic = _get(source, "piezo_tensor")
        if electronic is not None and np.size(electronic) == 18:
            total = np.asarray(electronic, dtype=float).reshape(3, 6)
            ionic = _get(source, "piezo_ionic_tensor")
            if ionic is not None and np.size(ionic) == 18:
                total = total + np.asarray(ionic, dtype=float).reshape(3, 6)
            return vasp_to_voigt(total)  # VASP columns xx yy zz xy yz zx -> xx yy zz yz xz xy
    return None


def frame_rotation(ml_structure: Any, dft_structure: Any) -> np.ndarray:
    """Rotation ``R`` taking vectors of the ML frame into the DFT frame (polar part of the cell map).

    Raises
    ------
    ValueError
        If the cells do not correspond (site count differs or the stretch exceeds 20%).

    """
    if len(ml_structure) != len(dft_structure):
        raise ValueError(f"cells differ: {len(ml_structure)} sites (ML) vs {len(dft_structure)} (DFT)")
    l_ml = np.asarray(ml_structure.lattice.matrix, dtype=float)  # rows are lattice vectors
    l_dft = np.asarray(dft_structure.lattice.matrix, dtype=float)
    deformation = l_dft.T @ np.linalg.inv(l_ml.T)  # F: a_dft = F a_ml
    u_left, _, v_right = np.linalg.svd(deformation)
    rotation = u_left @ v_right  # polar decomposition F = R U
    if np.linalg.det(rotation) < 0:
        raise ValueError("the DFT cell is a mirror image of the ML cell: lattice vectors were re-chosen")
    stretch = rotation.T @ deformation
    if np.max(np.abs(stretch - np.eye(3))) > _MAX_CELL_STRAIN:
        raise ValueError("cells do not correspond (lattice vectors re-chosen, e.g. a conventional cell)")
    return rotation


def rotate_voigt(voigt: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Rotate a Voigt tensor (3x3, 3x6 or 6x6) by an orthogonal matrix acting on every Cartesian index."""
    full = voigt_to_full(voigt)
    inp, out = "abcd"[: full.ndim], "wxyz"[: full.ndim]
    spec = ",".join(f"{o}{i}" for o, i in zip(out, inp, strict=True)) + f",{inp}->{out}"  # R_wa R_xb T_ab
    return full_to_voigt(np.einsum(spec, *([rotation] * full.ndim), full))


def tensor_comparison(name: str, ml: np.ndarray, dft: np.ndarray, structure: Any, symprec: float) -> TensorComparison:
    """Symmetrise both Voigt tensors on ``structure`` and compute Fnorm and relative error."""
    if name == "elastic":  # major symmetry C_IJ = C_JI, which the point-group projection does not impose
        ml, dft = 0.5 * (ml + ml.T), 0.5 * (dft + dft.T)
    ml_sym = full_to_voigt(symmetrize(voigt_to_full(ml), structure, symprec))
    dft_sym = full_to_voigt(symmetrize(voigt_to_full(dft), structure, symprec))
    fnorm = float(np.linalg.norm(ml_sym - dft_sym))
    dft_norm = float(np.linalg.norm(dft_sym))
    return TensorComparison(
        name=name,
        unit=TENSOR_UNITS[name],
        ml=ml_sym.tolist(),
        dft=dft_sym.tolist(),
        fnorm=fnorm,
        relative_error=fnorm / dft_norm if dft_norm > 1e-12 else None,
    )


def scalar_summary(tensors: dict[str, np.ndarray]) -> dict[str, float]:
    """Frame-invariant scalars: K_VRH and G_VRH (GPa) and the dielectric means (trace / 3)."""
    out: dict[str, float] = {}
    if "elastic" in tensors:
        from pymatgen.analysis.elasticity import ElasticTensor

        tensor = ElasticTensor.from_voigt(tensors["elastic"])
        out["k_vrh"], out["g_vrh"] = float(tensor.k_vrh), float(tensor.g_vrh)
    means = {
        "dielectric_electronic": "eps_electronic_mean",
        "dielectric_ionic": "eps_ionic_mean",
        "dielectric_total": "eps_total_mean",
    }
    for name, key in means.items():
        if name in tensors:
            out[key] = float(np.trace(tensors[name]) / 3.0)
    return out


def _scalar_errors(ml: dict[str, float], dft: dict[str, float]) -> dict[str, dict[str, float]]:
    return {key: {"ml": ml[key], "dft": dft[key], "abs_error": abs(ml[key] - dft[key])} for key in ml if key in dft}


def compare_prediction(
    prediction: Any, output: Any, stage: str, symprec: float = DEFAULT_SYMPREC
) -> ComparisonDocument:
    """Compare one ``TensorPredictionDocument`` with one expensive-stage output; never raises.

    Scalars (K_VRH, G_VRH, dielectric means) come from the symmetrised tensors. Problems (missing DFT
    output, unreadable document, non-corresponding cells) are reported in the returned document's
    ``error`` with ``ok=False``; with non-corresponding cells the scalars of the raw tensors are kept.
    """
    base = {"index": prediction.index, "label": prediction.label, "formula": prediction.formula}
    base["stage"] = stage
    try:
        dft, dft_structure = extract_dft_tensors(output)
    except Exception as error:  # noqa: BLE001 - reported in the document
        return ComparisonDocument(ok=False, error=f"{type(error).__name__}: {error}", **base)
    ml = {name: np.asarray(getattr(prediction, name), float) for name in dft if getattr(prediction, name)}
    try:
        rotation = frame_rotation(prediction.structure, dft_structure)
    except ValueError as error:  # frame-invariant scalars of the unsymmetrised tensors only
        scalars = _scalar_errors(scalar_summary(ml), scalar_summary(dft))
        return ComparisonDocument(ok=False, error=f"tensors not compared: {error}", scalars=scalars, **base)
    tensors = [
        tensor_comparison(name, ml[name], rotate_voigt(dft[name], rotation.T), prediction.structure, symprec)
        for name in dft
        if name in ml
    ]
    scalars = _scalar_errors(
        scalar_summary({t.name: np.asarray(t.ml) for t in tensors}),
        scalar_summary({t.name: np.asarray(t.dft) for t in tensors}),
    )
    return ComparisonDocument(
        ok=True,
        frame="Cartesian frame of the ML input structure",
        rotation=rotation.tolist(),
        tensors=tensors,
        scalars=scalars,
        **base,
    )
