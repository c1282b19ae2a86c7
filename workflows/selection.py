"""Serialisable selection criteria for the prescreen: plain dicts, lists and numbers, so they survive JSON.

Grammar
-------
A criterion is a dict. ``{"key": (op, value)}`` compares one quantity of a prediction; several keys in one
dict must all hold. ``{"and": [c1, c2, ...]}``, ``{"or": [c1, c2, ...]}`` and ``{"not": c}`` combine
criteria (they must be the only key of their dict). ``None`` or ``{}`` selects every successful prediction.
Tuples may arrive as two-element lists after a JSON round trip; both are accepted.

Operators: ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``, ``in`` and ``not in`` (value is a list),
``subset`` (a list-valued quantity, e.g. ``elements``, is a subset of the given list) and ``contains``
(a string, or a list of strings such as ``warnings``, contains the given text: ``{"warnings":
("contains", "metallic")}``).

Probability form: ``{"k_vrh": ("P>", 150, 0.2)}`` holds when ``P(k_vrh > 150) >= 0.2`` and
``{"k_vrh": ("P<", 5, 0.5)}`` when ``P(k_vrh < 5) >= 0.5``, under the calibrated distribution of the
quantity: ``X - offset`` is log-normal with median ``value - offset`` and log-sigma
``s = <key>_std / (value - offset)`` (offsets :data:`gmt_ase.results.SCALAR_LOG_OFFSETS`: 1 for the dielectric
means, 0 otherwise; the calibration is in log space), so ``P(X > t) = Phi((ln(value - offset) -
ln(t - offset)) / s)``, and 1 for a threshold at or below the offset. Only keys with a ``<key>_std``
partner qualify (``k_vrh``, ``g_vrh``, ``eps_electronic_mean``, ``eps_total_mean``, ``eij_max``). If the model gave no
uncertainty (``std`` is ``None``, e.g. the single-network ``fast`` model), evaluating such a condition
raises ``ValueError`` rather than pretending the spread is zero; a zero ``std`` is a plain comparison.

Keys are those of :func:`selection_record`: every derived quantity of the calculator (``k_vrh``,
``g_vrh``, ``eps_electronic_mean``, ``eij_max``, ``d_max_abs``, ``born_stable``, ...), their one-sigma
values (``k_vrh_std``, ...; ``None`` without uncertainty), the applicability ``warnings`` (list of
sentences) and ``n_warnings``, plus ``index``, ``label``, ``formula``, ``elements``, ``nsites``,
``space_group_number``, ``space_group_symbol`` and ``point_group``. An unknown key raises (a typo must
not silently select nothing); a quantity that is ``None`` (undefined, e.g. the Poisson ratio of a
singular stiffness) never satisfies a comparison. Failed predictions are never selected.

Warned structures: exclude them with ``{"n_warnings": ("==", 0)}`` (or only the metallic ones with
``{"not": {"warnings": ("contains", "metallic")}}``), or route them to DFT with
``{"or": [<criterion>, {"n_warnings": (">", 0)}]}``.

Examples
--------
>>> crit = {"or": [{"k_vrh": (">", 150)}, {"eps_electronic_mean": (">", 10)}]}
>>> evaluate(crit, {"k_vrh": 200.0, "eps_electronic_mean": 3.0})
True
>>> evaluate({"k_vrh": (">", 150), "born_stable": ("==", True)}, {"k_vrh": 200.0, "born_stable": False})
False
>>> evaluate({"k_vrh": ("P>", 150, 0.2)}, {"k_vrh": 130.0, "k_vrh_std": 20.0})  # P = 0.18
False
>>> evaluate({"k_vrh": ("P>", 150, 0.2)}, {"k_vrh": 135.0, "k_vrh_std": 20.0})  # P = 0.24
True

"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gmt_ase.core.derived import DERIVED_UNITS
from gmt_ase.results import SCALAR_LOG_OFFSETS, SCALAR_STD_KEYS

__all__ = [
    "OPERATORS",
    "PROBABILITY_OPERATORS",
    "SELECTION_KEYS",
    "check_selection_key",
    "evaluate",
    "exceedance_probability",
    "lognormal_exceedance_probability",
    "select_indices",
    "selection_record",
    "validate_criteria",
]

_SYMMETRY_KEYS = ("space_group_number", "space_group_symbol", "point_group")
#: Every quantity a criterion or ``rank_by`` can name (the keys of :func:`selection_record`).
_STD_KEYS = tuple(f"{key}_std" for key in SCALAR_STD_KEYS)
SELECTION_KEYS: tuple[str, ...] = (
    "index",
    "label",
    "formula",
    "nsites",
    "elements",
    *_SYMMETRY_KEYS,
    *DERIVED_UNITS,
    *_STD_KEYS,
    "warnings",
    "n_warnings",
)
#: ``(op, threshold, min_probability)`` conditions: probability that the quantity is above / below.
PROBABILITY_OPERATORS = ("P>", "P<")

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda value, allowed: value in allowed,
    "not in": lambda value, allowed: value not in allowed,
    "subset": lambda value, allowed: set(value) <= set(allowed),
    "contains": lambda value, text: any(text in item for item in ([value] if isinstance(value, str) else value)),
}
_COMBINATORS = ("and", "or", "not")
_COLLECTION_OPERATORS = ("in", "not in", "subset")


def validate_criteria(criteria: Mapping[str, Any] | None) -> None:
    """Check the structure of a criterion and its operators, raising ``ValueError`` if malformed."""
    if criteria is None:
        return
    if not isinstance(criteria, Mapping):
        raise ValueError(f"a criterion must be a dict, got {type(criteria).__name__}: {criteria!r}")
    combinators = [key for key in criteria if key in _COMBINATORS]
    if combinators:
        if len(criteria) != 1:
            raise ValueError(f"'{combinators[0]}' must be the only key of its dict, got {list(criteria)}")
        key, value = next(iter(criteria.items()))
        if key == "not":
            validate_criteria(value)
            return
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            raise ValueError(f"'{key}' needs a non-empty list of criteria, got {value!r}")
        for sub in value:
            validate_criteria(sub)
        return
    for key, condition in criteria.items():
        check_selection_key(key)
        _split_condition(key, condition)


def check_selection_key(key: str, what: str = "selection key") -> None:
    """Raise ``ValueError`` for a name that is not in :data:`SELECTION_KEYS` (with the closest names)."""
    if key not in SELECTION_KEYS:
        close = difflib.get_close_matches(str(key), SELECTION_KEYS, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown {what} {key!r}{hint} Available: {', '.join(SELECTION_KEYS)}")


def _probability_condition(key: str, condition: Any) -> bool:
    """Whether ``condition`` is a well-formed ``(P>|P<, threshold, min_probability)``; raise if malformed."""
    if (
        not isinstance(condition, Sequence)
        or isinstance(condition, str)
        or not condition
        or condition[0] not in PROBABILITY_OPERATORS
    ):
        return False
    if key not in SCALAR_STD_KEYS:
        raise ValueError(
            f"{condition[0]!r} needs a quantity with an uncertainty, one of {SCALAR_STD_KEYS}; got {key!r}"
        )
    if len(condition) != 3 or not all(isinstance(v, int | float) for v in condition[1:]):
        raise ValueError(
            f"condition for {key!r} must be ({condition[0]!r}, threshold, min_probability), got {condition!r}"
        )
    if not 0.0 <= float(condition[2]) <= 1.0:
        raise ValueError(f"min_probability for {key!r} must be in [0, 1], got {condition[2]!r}")
    return True


def exceedance_probability(mean: float, std: float, threshold: float, above: bool = True) -> float:
    """``P(X > threshold)`` (or ``P(X < threshold)``) for ``X ~ Normal(mean, std)``; a step when std is 0."""
    if std < 0 or not math.isfinite(std):
        raise ValueError(f"std must be finite and non-negative, got {std}")
    if std == 0:
        p_above = 1.0 if mean > threshold else 0.0
    else:
        p_above = 0.5 * math.erfc((threshold - mean) / (std * math.sqrt(2.0)))
    return p_above if above else 1.0 - p_above


def lognormal_exceedance_probability(
    value: float, std: float, threshold: float, offset: float = 0.0, above: bool = True
) -> float:
    """``P(X > threshold)`` (or below) when ``X - offset`` is log-normal about ``value - offset``.

    The log-sigma is ``std / (value - offset)`` (the calibrated spread, :data:`gmt_ase.results.SCALAR_LOG_OFFSETS`).
    A threshold at or below the offset is always exceeded; a zero ``std`` or a value at the offset is a step.
    """
    if std < 0 or not math.isfinite(std):
        raise ValueError(f"std must be finite and non-negative, got {std}")
    if threshold <= offset:
        p_above = 1.0
    elif value <= offset or std == 0:
        p_above = 1.0 if value > threshold else 0.0
    else:
        log_sigma = std / (value - offset)
        z = (math.log(value - offset) - math.log(threshold - offset)) / log_sigma
        p_above = 0.5 * math.erfc(-z / math.sqrt(2.0))
    return p_above if above else 1.0 - p_above


def _evaluate_probability(key: str, condition: Sequence[Any], record: Mapping[str, Any]) -> bool:
    op, threshold, min_probability = condition
    mean, std = record.get(key), record.get(f"{key}_std")
    if mean is None:
        return False
    if std is None:
        raise ValueError(
            f"criterion {key!r} {op} {threshold} needs '{key}_std', but the prediction has no uncertainty "
            "(the model has no calibrated spread); use a plain comparison or a model with uncertainty"
        )
    probability = lognormal_exceedance_probability(
        float(mean), float(std), float(threshold), SCALAR_LOG_OFFSETS[key], above=op == "P>"
    )
    return probability >= float(min_probability)


def _split_condition(key: str, condition: Any) -> tuple[str, Any]:
    if _probability_condition(key, condition):
        return condition[0], tuple(condition[1:])
    if (
        not isinstance(condition, Sequence)
        or isinstance(condition, str)
        or len(condition) != 2
        or not isinstance(condition[0], str)
    ):
        raise ValueError(f"condition for {key!r} must be (operator, value), got {condition!r}")
    op, value = condition
    if op not in OPERATORS:
        raise ValueError(f"unknown operator {op!r} for {key!r}; allowed: {sorted(OPERATORS)}")
    if op in _COLLECTION_OPERATORS and (isinstance(value, str) or not isinstance(value, Iterable)):
        raise ValueError(f"operator {op!r} for {key!r} needs a list value, got {value!r}")
    if op == "contains" and not isinstance(value, str):
        raise ValueError(f"operator 'contains' for {key!r} needs a text value, got {value!r}")
    return op, value


def evaluate(criteria: Mapping[str, Any] | None, record: Mapping[str, Any]) -> bool:
    """Whether one record (see :func:`selection_record`) satisfies a criterion.

    Raises
    ------
    ValueError
        If the criterion is malformed, names a key the record does not have, or compares
        incompatible types.

    """
    if not criteria:
        return True
    if "and" in criteria or "or" in criteria or "not" in criteria:
        validate_criteria(criteria)
        key, value = next(iter(criteria.items()))
        if key == "not":
            return not evaluate(value, record)
        results = (evaluate(sub, record) for sub in value)
        return all(results) if key == "and" else any(results)
    for key, condition in criteria.items():
        op, target = _split_condition(key, condition)
        if key not in record:
            raise ValueError(f"unknown selection key {key!r}; available: {sorted(record)}")
        if op in PROBABILITY_OPERATORS:
            if not _evaluate_probability(key, (op, *target), record):
                return False
            continue
        value = record[key]
        if value is None:
            return False
        try:
            if not OPERATORS[op](value, target):
                return False
        except TypeError as error:
            raise ValueError(f"cannot apply {key!r} {op} {target!r} to value {value!r}: {error}") from error
    return True


def selection_record(doc: Any) -> dict[str, Any]:
    """Flat dict of the quantities a criterion can use, from a ``TensorPredictionDocument``."""
    record: dict[str, Any] = {"index": doc.index, "label": doc.label, "formula": doc.formula}
    structure = doc.structure
    record["nsites"] = len(structure) if structure is not None else None
    elements = sorted({el.symbol for el in structure.composition}) if structure is not None else None
    record["elements"] = elements
    symmetry = doc.symmetry
    for key in _SYMMETRY_KEYS:
        record[key] = getattr(symmetry, key) if symmetry is not None else None
    record.update(doc.derived or {})
    uncertainty = getattr(doc, "uncertainty", None) or {}
    record.update({key: uncertainty.get(key) for key in _STD_KEYS})
    warnings = list(getattr(doc, "warnings", None) or [])
    record.update(warnings=warnings, n_warnings=len(warnings))
    return record


def select_indices(
    docs: Iterable[Any],
    criteria: Mapping[str, Any] | None = None,
    top_k: int | None = None,
    rank_by: str | None = None,
    descending: bool = True,
) -> list[int]:
    """Return the indices of successful predictions meeting ``criteria``, optionally the best ``top_k``.

    Parameters
    ----------
    docs
        ``TensorPredictionDocument``s (failed ones are skipped).
    criteria
        See the module docstring; ``None`` keeps every successful prediction.
    top_k
        Keep at most this many, the best by ``rank_by`` (required with ``top_k``).
    rank_by
        Record key to rank by; candidates whose value is ``None`` are dropped when ranking.
    descending
        Rank largest first (default) or smallest first.

    Returns
    -------
    list of int
        Selected ``doc.index`` values, in input order (or in rank order when ``top_k`` is given).

    """
    validate_criteria(criteria)
    if top_k is not None and (int(top_k) < 0 or rank_by is None):
        raise ValueError(f"top_k must be >= 0 and needs rank_by, got top_k={top_k}, rank_by={rank_by!r}")
    records = [selection_record(doc) for doc in docs if doc.ok]
    chosen = [record for record in records if evaluate(criteria, record)]
    if rank_by is None:
        return [record["index"] for record in chosen]
    for record in chosen:
        if rank_by not in record:
            raise ValueError(f"unknown rank_by key {rank_by!r}; available: {sorted(record)}")
    ranked = [record for record in chosen if record[rank_by] is not None]
    ranked.sort(key=lambda record: record[rank_by], reverse=descending)  # stable: ties keep input order
    if top_k is not None:
        ranked = ranked[: int(top_k)]
    return [record["index"] for record in ranked]
