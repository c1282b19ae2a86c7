r"""The prescreen flow: GMTNet predictions, selection, expensive stages on the selection, comparison.

GMTNet predictions run in chunks, a selection job applies the criteria, expensive calculations run on the
selected structures only, and a last job compares ML with the expensive results.

Shape of the flow made by :class:`TensorPrescreenMaker`::

    gmt tensor prediction 1/N ... N/N      (independent jobs: run them in parallel, e.g. on a GPU worker)
                  \      |      /
                gmt prescreen selection     (applies the criteria; stores a PrescreenDocument)
                         |  Response(replace=...) at run time, only if something was selected:
        <stage maker>.make(structure) for each selected structure and each stage
           (names end in "[gmt-stage <stage> #<index>]"; metadata gmt_stage / gmt_index)
                         |
                gmt prescreen comparison    (final output: PrescreenDocument with comparisons)

The flow's ``output`` resolves to the final :class:`~gmt_ase.workflows.schemas.PrescreenDocument`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker, OnMissing, Response, job

from gmt_ase.core.symmetry import DEFAULT_SYMPREC

from .compare import compare_prediction
from .jobs import TensorPredictionMaker, as_structure
from .schemas import PrescreenDocument, TensorPredictionDocument
from .selection import check_selection_key, select_indices, validate_criteria

__all__ = ["STAGE_TAG", "TensorPrescreenMaker", "compare_stages", "select_candidates", "vasp_input_sets"]

#: Every job of an expensive stage has a name containing this tag (for name filters of workflow managers).
STAGE_TAG = "gmt-stage"


@dataclass
class TensorPrescreenMaker(Maker):
    """Prescreen many structures with GMTNet, then run expensive makers on the selected ones only.

    Parameters
    ----------
    name
        Flow name.
    prediction_maker
        Settings of the ML jobs (model, symprec, batch size, device, ...).
    chunk_size
        Structures per prediction job; each chunk is a separate job.
    criteria
        Selection criteria (see :mod:`gmt_ase.workflows.selection`), e.g. ``{"k_vrh": (">", 150)}``;
        ``None`` selects every successful prediction.
    top_k, rank_by, descending
        Optionally keep only the ``top_k`` selected structures ranked by the ``rank_by`` quantity.
    expensive_makers
        ``{stage name: maker}``; every maker's ``make(structure)`` is called for each selected structure:
        atomate2's VASP ``ElasticMaker`` or ``DielectricMaker``, a force-field ``ElasticMaker``, or
        :class:`~gmt_ase.workflows.jobs.EMTElasticMaker` as a stand-in.

    """

    name: str = "gmt tensor prescreen"
    prediction_maker: TensorPredictionMaker = field(default_factory=TensorPredictionMaker)
    chunk_size: int = 1000
    criteria: dict[str, Any] | None = None
    top_k: int | None = None
    rank_by: str | None = None
    descending: bool = True
    expensive_makers: dict[str, Maker] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_criteria(self.criteria)
        if int(self.chunk_size) < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if self.top_k is not None and (int(self.top_k) < 0 or self.rank_by is None):
            raise ValueError(f"top_k must be >= 0 and needs rank_by, got {self.top_k}, {self.rank_by!r}")
        if self.rank_by is not None:
            check_selection_key(self.rank_by, "rank_by key")
        for stage, maker in self.expensive_makers.items():
            if not callable(getattr(maker, "make", None)):
                raise TypeError(f"expensive maker {stage!r} has no make(structure) method: {maker!r}")

    def make(self, structures: Sequence[Any], labels: Sequence[str | None] | None = None) -> Flow:
        """Build the prescreen flow.

        Parameters
        ----------
        structures
            pymatgen ``Structure`` or ASE ``Atoms`` objects.
        labels
            Optional labels (e.g. material ids), one per structure, kept in every document.

        """
        items = [as_structure(structure) for structure in structures]
        labels = [None] * len(items) if labels is None else list(labels)
        if len(labels) != len(items):
            raise ValueError(f"got {len(items)} structures but {len(labels)} labels")
        size = int(self.chunk_size)
        starts = range(0, len(items), size)
        predictions = []
        for number, start in enumerate(starts, 1):
            stop = min(start + size, len(items))
            predict = self.prediction_maker.make(
                items[start:stop], indices=list(range(start, stop)), labels=labels[start:stop]
            )
            predict.append_name(f" {number}/{len(starts)}")
            predictions.append(predict)
        select = select_candidates(
            [predict.output for predict in predictions],
            criteria=self.criteria,
            top_k=self.top_k,
            rank_by=self.rank_by,
            descending=self.descending,
            expensive_makers=dict(self.expensive_makers),
            symprec=float(self.prediction_maker.symprec),
        )
        # Worker settings of the selection job must not leak into the DFT jobs it creates: those are set
        # with name filters (STAGE_TAG), see the README's workflow section.
        select.config.pass_manager_config = False
        return Flow([*predictions, select], output=select.output, name=self.name)


def _as_document(doc: Any) -> TensorPredictionDocument:
    return doc if isinstance(doc, TensorPredictionDocument) else TensorPredictionDocument.model_validate(doc)


@job(name="gmt prescreen selection")
def select_candidates(
    predictions: list[list[Any]],
    criteria: dict[str, Any] | None = None,
    top_k: int | None = None,
    rank_by: str | None = None,
    descending: bool = True,
    expensive_makers: Mapping[str, Maker] | None = None,
    symprec: float = DEFAULT_SYMPREC,
) -> Response:
    """Select predictions by ``criteria`` and replace this job by the expensive stages plus a comparison.

    The stored output of this job is the selection (a ``PrescreenDocument`` without comparisons); when
    structures were selected and stages given, the job is replaced by a flow whose output, the same
    document with comparisons, becomes this job's final output.
    """
    docs = sorted((_as_document(doc) for chunk in predictions for doc in chunk), key=lambda doc: doc.index)
    indices = select_indices(docs, criteria, top_k, rank_by, descending)
    by_index = {doc.index: doc for doc in docs}
    makers = dict(expensive_makers or {})
    provenance = next((doc.provenance for doc in docs if doc.provenance is not None), None)
    summary = PrescreenDocument(
        n_structures=len(docs),
        n_failed=sum(not doc.ok for doc in docs),
        failures=[
            {"index": doc.index, "label": doc.label, "error_type": doc.error_type, "error": doc.error}
            for doc in docs
            if not doc.ok
        ],
        criteria=criteria,
        top_k=top_k,
        rank_by=rank_by,
        selected_indices=indices,
        selected=[by_index[index] for index in indices],
        stages=list(makers),
        provenance=provenance,
    )
    if not indices or not makers:
        return Response(output=summary)
    nodes, outputs = [], {stage: {} for stage in makers}
    for doc in summary.selected:
        for stage, maker in makers.items():
            node = maker.make(doc.structure)
            node.append_name(f" [{STAGE_TAG} {stage} #{doc.index}]")
            node.update_metadata({"gmt_stage": stage, "gmt_index": doc.index})
            nodes.append(node)
            outputs[stage][str(doc.index)] = node.output
    compare = compare_stages(summary, outputs, symprec)
    compare.config.on_missing_references = OnMissing.NONE  # a failed stage is reported, not fatal here
    return Response(output=summary, replace=Flow([*nodes, compare], output=compare.output))


@job(name="gmt prescreen comparison")
def compare_stages(
    summary: PrescreenDocument, stage_outputs: dict[str, dict[str, Any]], symprec: float = DEFAULT_SYMPREC
) -> PrescreenDocument:
    """Add a ML-vs-expensive comparison for every selected structure and stage to ``summary``."""
    if not isinstance(summary, PrescreenDocument):
        summary = PrescreenDocument.model_validate(summary)
    comparisons = [
        compare_prediction(doc, outputs.get(str(doc.index)), stage, symprec)
        for doc in summary.selected
        for stage, outputs in stage_outputs.items()
    ]
    return summary.model_copy(update={"comparisons": comparisons})


def _vasp_makers(maker: Any, path: str) -> list[tuple[str, Any]]:
    """(path, maker) for every maker with an ``input_set_generator`` inside ``maker`` (recursively)."""
    if getattr(maker, "input_set_generator", None) is not None:
        return [(path, maker)]
    found: list[tuple[str, Any]] = []
    if dataclasses.is_dataclass(maker):
        for item in dataclasses.fields(maker):
            child = getattr(maker, item.name)
            if isinstance(child, Maker):
                found += _vasp_makers(child, f"{path}.{item.name}")
    return found


def vasp_input_sets(maker: Any, structure: Any, potcar_spec: bool = True) -> dict[str, dict[str, str]]:
    """Text of the VASP input files that ``maker``'s jobs would write for ``structure``.

    With ``potcar_spec=True`` (default) no POTCAR files are needed: a ``POTCAR.spec`` lists the symbols.
    Only jobs whose input is known before running are covered (e.g. for atomate2's VASP ``ElasticMaker``,
    the bulk relaxations and the template of the deformation relaxations).

    Returns
    -------
    dict
        ``{"<maker name> (<attribute path>)": {file name: text}}``.

    """
    structure = as_structure(structure)
    sets = {}
    for path, sub in _vasp_makers(maker, type(maker).__name__):
        input_set = sub.input_set_generator.get_input_set(structure, potcar_spec=potcar_spec)
        sets[f"{sub.name} ({path})"] = {name: str(content) for name, content in input_set.items()}
    if not sets:
        raise ValueError(f"{type(maker).__name__} has no VASP input_set_generator (is it a VASP maker?)")
    return sets
