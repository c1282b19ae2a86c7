"""Physics-guarantee checks: the same crystal gets the same answer, and a small change a small change.

Each check runs a model (any ``predict(list_of_atoms) -> list_of_predictions`` callable, e.g. a
:func:`gmt_ase.predict.predict_tensors` closure) on textbook crystals (:mod:`gmt_ase.evaluation.textbook`)
written differently, rattled or strained, and counts passes (DESIGN.md section 8):

- :func:`invariance_checks`: rotations, a reflection, a rigid translation, shuffled atoms, diagonal and
  non-diagonal supercells, primitive / conventional / Niggli cells give the same invariants and one-sigma
  spreads (relative ``rtol``) and tensors that rotate with the crystal;
- :func:`rattle_checks`: centrosymmetric crystals rattled by 0.002-0.02 A keep a piezo tensor of the order
  of the distortion, and up to 0.01 A K, G, the dielectric means and their spreads within 2 %;
- :func:`strain_checks`: smooth K, G, C33 and dielectric means under -2..+2 % strain (second differences
  at most 0.5 % of the value), and the pressure derivative K' from the hydrostatic series;
- :func:`polar_distortion_series`: the piezo response of Ti off-centring in cubic BaTiO3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.build import make_supercell, niggli_reduce
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from gmt_ase.core.invariants import INVARIANTS
from gmt_ase.core.tensors import voigt_to_full
from gmt_ase.evaluation.textbook import CENTROSYMMETRIC, TEXTBOOK_CRYSTALS, build_textbook, cubic_batio3
from gmt_ase.invariant.invariant_model import network_invariants
from gmt_ase.results import SCALAR_STD_KEYS
from gmt_ase.testing import random_orthogonal, rotate_tensor, transform_atoms

__all__ = [
    "CheckResult",
    "Predict",
    "invariants_of",
    "invariance_checks",
    "pressure_derivative",
    "polar_distortion_series",
    "rattle_checks",
    "strain_checks",
    "strain_series",
]

#: ``predict(structures) -> predictions`` (:class:`gmt_ase.results.TensorPrediction` objects).
Predict = Callable[[list[Atoms]], list]
INVARIANT_NAMES = tuple(INVARIANTS)
#: The one-sigma spreads of a prediction that must be as invariant and continuous as the values (issue 21).
SPREAD_NAMES = tuple(f"{name}_std" for name in SCALAR_STD_KEYS)
_TENSORS = ("dielectric_electronic", "dielectric_total", "piezoelectric", "elastic")
#: Typical scales of the tensors; 1e-3 of them is the absolute slack of a comparison (zero tensors).
_FLOORS = {"dielectric_electronic": 1e-3, "dielectric_total": 1e-3, "piezoelectric": 1e-3, "elastic": 1e-1}
STRAINS = np.round(np.arange(-0.02, 0.02 + 1e-9, 0.0025), 6)


@dataclass
class CheckResult:
    """Passes and failures of one guarantee; ``failures`` describe each failed check in a line."""

    name: str
    passed: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Number of checks run."""
        return self.passed + len(self.failures)

    def record(self, ok: bool, description: str) -> None:
        """Count one check."""
        if ok:
            self.passed += 1
        else:
            self.failures.append(description)


def _full(prediction: object) -> dict[str, np.ndarray]:
    return {
        "dielectric_electronic": np.asarray(prediction.dielectric_electronic, dtype=float),
        "dielectric_ionic": np.asarray(prediction.dielectric_ionic, dtype=float),
        "dielectric_total": np.asarray(prediction.dielectric_total, dtype=float),
        "piezoelectric": voigt_to_full(np.asarray(prediction.piezoelectric, dtype=float)),
        "elastic": voigt_to_full(np.asarray(prediction.elastic, dtype=float)),
    }


def invariants_of(prediction: object) -> dict[str, float]:
    """K_VRH, G_VRH (GPa), dielectric means and the piezo norm of the full 3x3x3 tensor (C/m^2)."""
    return network_invariants(_full(prediction))


def _failed(prediction: object) -> str | None:
    return None if getattr(prediction, "ok", False) else f"failed: {getattr(prediction, 'message', prediction)}"


def _mismatch(a: Mapping[str, float], b: Mapping[str, float], names: Sequence[str], rtol: float,
              atol: Mapping[str, float]) -> str | None:
    """Describe the first of ``names`` where ``a`` and ``b`` differ by more than ``rtol |a| + atol``."""
    for name in names:
        if abs(a[name] - b[name]) > rtol * abs(a[name]) + atol.get(name, 0.0):
            return f"{name} {a[name]:.6g} vs {b[name]:.6g}"
    return None


def _invariant_mismatch(a: dict[str, float], b: dict[str, float], rtol: float, piezo_atol: float) -> str | None:
    return _mismatch(a, b, INVARIANT_NAMES, rtol, {"piezo_norm": piezo_atol})


def _spreads(prediction: object) -> dict[str, float] | None:
    """Return the scalar one-sigma spreads of a prediction, ``None`` for a model without a calibrated spread."""
    uncertainty = getattr(prediction, "uncertainty", None)
    return None if uncertainty is None else {name: float(uncertainty[name]) for name in SPREAD_NAMES}


def _spread_mismatch(a: dict[str, float] | None, b: dict[str, float] | None, rtol: float) -> str | None:
    if a is None or b is None:
        return None if a is b else "one of two ways of writing the crystal has no spread"
    return _mismatch(a, b, SPREAD_NAMES, rtol, dict.fromkeys(SPREAD_NAMES, 1e-9))


def _tensor_mismatch(reference: dict[str, np.ndarray], other: dict[str, np.ndarray], q: np.ndarray | None,
                     rtol: float) -> str | None:
    for name in _TENSORS:
        expected = reference[name] if q is None else rotate_tensor(reference[name], q)
        error = np.linalg.norm(other[name] - expected)
        if error > rtol * np.linalg.norm(expected) + 1e-3 * _FLOORS[name]:
            return f"{name} off by {error:.3g} (norm {np.linalg.norm(expected):.3g})"
    return None


def _cell_variants(atoms: Atoms, seed: int) -> list[tuple[str, Atoms, np.ndarray | None]]:
    """(label, structure, Cartesian map Q or None when only invariants are comparable) of one crystal."""
    rng = np.random.default_rng(seed)
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    variants: list[tuple[str, Atoms, np.ndarray | None]] = []
    for label, q in (("rotation", random_orthogonal(rng)), ("rotation 90 deg about z", turn),
                     ("reflection", random_orthogonal(rng, proper=False))):
        variants.append((label, transform_atoms(atoms, q), q))
    translated = atoms.copy()
    translated.translate(rng.normal(size=3))
    variants.append(("translation", translated, np.eye(3)))
    shuffled = atoms[rng.permutation(len(atoms))]
    variants.append(("atom order", shuffled, np.eye(3)))
    variants.append(("2x1x1 supercell", make_supercell(atoms, np.diag([2, 1, 1])), np.eye(3)))
    variants.append(("non-diagonal supercell", make_supercell(atoms, [[1, 1, 0], [0, 1, 1], [1, 0, 1]]), np.eye(3)))
    structure = AseAtomsAdaptor.get_structure(atoms)
    variants.append(("primitive cell", AseAtomsAdaptor.get_atoms(structure.get_primitive_structure()), None))
    conventional = SpacegroupAnalyzer(structure, symprec=1e-3).get_conventional_standard_structure()
    variants.append(("conventional cell", AseAtomsAdaptor.get_atoms(conventional), None))
    niggli = atoms.copy()
    niggli_reduce(niggli)
    variants.append(("Niggli cell", niggli, None))
    return variants


def _rewritten(atoms: Atoms, seed: int) -> list[tuple[str, Atoms, np.ndarray | None]]:
    """Two rewritings of one crystal for the many-crystal checks.

    A rotation (odd seeds) or reflection with shuffled, translated atoms in one structure, and (cells up to 24
    atoms) a non-diagonal supercell.
    """
    rng = np.random.default_rng(seed)
    q = random_orthogonal(rng, proper=bool(seed % 2))
    moved = transform_atoms(atoms, q)[rng.permutation(len(atoms))]
    moved.translate(rng.normal(size=3))
    variants: list[tuple[str, Atoms, np.ndarray | None]] = [("rotated, shuffled and translated", moved, q)]
    if len(atoms) <= 24:
        supercell = make_supercell(atoms, [[1, 1, 0], [0, 1, 1], [1, 0, 1]])
        variants.append(("non-diagonal supercell", supercell, np.eye(3)))
    return variants


def invariance_checks(predict: Predict, names: Iterable[str] = tuple(TEXTBOOK_CRYSTALS), rtol: float = 1e-4,
                      seed: int = 0, structures: Mapping[str, Atoms] | None = None) -> CheckResult:
    """Check for the same invariants (``rtol``) and co-rotating tensors for every way of writing each crystal.

    Textbook crystals (``names``) are written in ten ways (rotations, a reflection, a translation, shuffled
    atoms, diagonal and non-diagonal supercells, primitive, conventional and Niggli cells); ``structures``
    (label -> crystal, e.g. crystals of the data) in the two of :func:`_rewritten`, which is cheaper.
    """
    result = CheckResult("invariance")
    crystals = [(name, build_textbook(name), _cell_variants) for name in names]
    crystals += [(label, atoms, _rewritten) for label, atoms in (structures or {}).items()]
    for index, (name, atoms, rewrite) in enumerate(crystals):
        variants = rewrite(atoms, seed + index)
        predictions = predict([atoms, *(v[1] for v in variants)])
        reference = predictions[0]
        if (problem := _failed(reference)) is not None:
            result.record(False, f"{name}: {problem}")
            continue
        ref_inv, ref_full, ref_spreads = invariants_of(reference), _full(reference), _spreads(reference)
        for (label, _, q), prediction in zip(variants, predictions[1:], strict=True):
            problem = _failed(prediction)
            if problem is None:
                problem = _invariant_mismatch(ref_inv, invariants_of(prediction), rtol, 1e-6)
            if problem is None:
                problem = _spread_mismatch(ref_spreads, _spreads(prediction), rtol)
            if problem is None and q is not None:
                problem = _tensor_mismatch(ref_full, _full(prediction), q, rtol)
            result.record(problem is None, f"{name} {label}: {problem}")
    return result


def _rattled(atoms: Atoms, sigma: float, seed: int) -> Atoms:
    rattled = atoms.copy()
    rattled.positions += np.random.default_rng(seed).normal(scale=sigma, size=rattled.positions.shape)
    return rattled


def rattle_checks(predict: Predict, names: Iterable[str] = CENTROSYMMETRIC,
                  sigmas: Sequence[float] = (0.002, 0.005, 0.01, 0.02), seeds: int = 5,
                  relative: float = 0.02) -> CheckResult:
    """Check rattled centrosymmetric 2x2x2 supercells.

    Each passes with max |e_iJ| <= 0.05 C/m^2 (0.10 above 0.01 A) and, up to 0.01 A, K, G, the dielectric
    means and their one-sigma spreads within ``relative`` of the unrattled crystal (the targets of issues 19
    and 21).
    """
    result = CheckResult("rattle")
    for name in names:
        atoms = make_supercell(build_textbook(name), 2 * np.eye(3, dtype=int))
        structures = [atoms] + [_rattled(atoms, s, seed) for s in sigmas for seed in range(seeds)]
        predictions = predict(structures)
        reference, reference_spreads = invariants_of(predictions[0]), _spreads(predictions[0])
        labels = [(s, seed) for s in sigmas for seed in range(seeds)]
        for (sigma, seed), prediction in zip(labels, predictions[1:], strict=True):
            problem = _failed(prediction)
            if problem is None:
                limit = 0.05 if sigma <= 0.01 + 1e-12 else 0.10
                e_max = float(np.abs(prediction.piezoelectric).max())
                values = invariants_of(prediction)
                drifts = {k: abs(values[k] / reference[k] - 1.0) for k in INVARIANT_NAMES[:4]}
                spreads = _spreads(prediction)
                if spreads is not None and reference_spreads is not None:  # eij_max_std is 0 at the centre
                    drifts.update({k: abs(spreads[k] / reference_spreads[k] - 1.0) for k in SPREAD_NAMES[:4]})
                worst = max(drifts, key=drifts.get)
                if e_max > limit:
                    problem = f"max |e| {e_max:.3f} C/m^2"
                elif sigma <= 0.01 + 1e-12 and drifts[worst] > relative:
                    problem = f"{worst} changed by {100 * drifts[worst]:.1f} %"
            result.record(problem is None, f"{name} sigma {sigma} A seed {seed}: {problem}")
    return result


def _strained(atoms: Atoms, strain: float, mode: str) -> Atoms:
    deformation = np.eye(3) * (1.0 + strain) if mode == "hydrostatic" else np.diag([1.0, 1.0, 1.0 + strain])
    strained = atoms.copy()
    strained.set_cell(atoms.cell[:] @ deformation.T, scale_atoms=True)
    return strained


def strain_series(predict: Predict, atoms: Atoms, mode: str,
                  strains: Sequence[float] = tuple(STRAINS)) -> dict[str, np.ndarray]:
    """K, G, C33 and the dielectric means along a homogeneous strain path (``hydrostatic`` or ``uniaxial`` z)."""
    if mode not in ("hydrostatic", "uniaxial"):
        raise ValueError(f"mode must be 'hydrostatic' or 'uniaxial', got {mode!r}")
    predictions = predict([_strained(atoms, s, mode) for s in strains])
    rows = [{**invariants_of(p), "c33": float(np.asarray(p.elastic)[2, 2])} for p in predictions]
    return {key: np.array([row[key] for row in rows]) for key in ("k_vrh", "g_vrh", "c33", *INVARIANT_NAMES[2:4])}


def pressure_derivative(strains: np.ndarray, bulk_moduli: np.ndarray, span: float = 0.01) -> float:
    """K' = dK/dP from a hydrostatic series: dP = -3 K ds, slope fitted over ``|s| <= span``."""
    strains = np.asarray(strains)
    near = np.abs(strains) <= span + 1e-12
    slope = np.polyfit(strains[near], np.asarray(bulk_moduli)[near], 1)[0]
    k0 = float(np.interp(0.0, strains, bulk_moduli))
    return float(-slope / (3.0 * k0))


def strain_checks(
    predict: Predict,
    names: Iterable[str] = ("Si", "MgO", "NaCl", "Al", "ZnO"),
    tolerance: float = 0.005,
    k_prime: tuple[float, float] = (3.0, 6.0),
) -> tuple[CheckResult, CheckResult, dict[str, float]]:
    """Smoothness (max second difference <= ``tolerance`` x value) per quantity and strain mode, and K'.

    Returns the smoothness result, the K' result and K' per crystal.
    """
    smooth, derivative, k_primes = CheckResult("strain smoothness"), CheckResult("pressure derivative"), {}
    for name in names:
        atoms = build_textbook(name)
        for mode in ("hydrostatic", "uniaxial"):
            series = strain_series(predict, atoms, mode)
            for key, values in series.items():
                second = np.abs(np.diff(values, 2))
                worst = float(np.max(second / np.abs(values[1:-1])))
                smooth.record(worst <= tolerance, f"{name} {mode} {key}: second difference {100 * worst:.2f} %")
            if mode == "hydrostatic":
                k_primes[name] = pressure_derivative(STRAINS, series["k_vrh"])
                low, high = k_prime
                derivative.record(low <= k_primes[name] <= high, f"{name}: K' = {k_primes[name]:.2f}")
    return smooth, derivative, k_primes


def polar_distortion_series(predict: Predict,
                            shifts: Sequence[float] = (0.0, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1)
                            ) -> np.ndarray:
    """Piezo norm (C/m^2) of cubic BaTiO3 with Ti moved along z by each shift (Angstrom)."""
    predictions = predict([cubic_batio3(s) for s in shifts])
    return np.array([invariants_of(p)["piezo_norm"] for p in predictions])
