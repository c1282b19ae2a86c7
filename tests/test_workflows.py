"""End-to-end tests of gmt_ase.workflows with the real GMTCalculator on a tiny untrained checkpoint.

The expensive tier is the EMT stand-in (no VASP); the VASP stage is checked through its input sets.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

pytest.importorskip("jobflow")
pytest.importorskip("atomate2")

from jobflow import Flow, JobStore, run_locally  # noqa: E402
from maggma.stores import MemoryStore  # noqa: E402
from monty.json import MontyDecoder, MontyEncoder, jsanitize  # noqa: E402

from gmt_ase import GMTCalculator  # noqa: E402
from gmt_ase.workflows import (  # noqa: E402
    EMTElasticMaker,
    PrescreenDocument,
    TensorPredictionDocument,
    TensorPredictionMaker,
    TensorPrescreenMaker,
    vasp_input_sets,
)
from gmt_ase.workflows.flows import STAGE_TAG, select_candidates  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")


def emt_structures() -> list[Structure]:
    """20 small crystals of EMT elements (fcc, conventional fcc, bcc, hcp, sc, strained)."""
    atoms = []
    for element, a in [
        ("Cu", 3.61),
        ("Ag", 4.09),
        ("Au", 4.08),
        ("Ni", 3.52),
        ("Pd", 3.89),
        ("Pt", 3.92),
        ("Al", 4.05),
    ]:
        atoms.append(bulk(element, "fcc", a=a))
        atoms.append(bulk(element, "fcc", a=1.02 * a, cubic=True))
    atoms += [
        bulk("Cu", "bcc", a=2.87),
        bulk("Al", "bcc", a=3.2),
        bulk("Cu", "hcp", a=2.55, c=4.17),
        bulk("Ni", "sc", a=2.4),
        bulk("Au", "hcp", a=2.9, c=4.8),
        bulk("Pt", "bcc", a=3.1),
    ]
    return [AseAtomsAdaptor.get_structure(a) for a in atoms]


@pytest.fixture(scope="module")
def checkpoint(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def structures():
    return emt_structures()


@pytest.fixture(scope="module")
def direct_predictions(checkpoint, structures):
    """Predictions straight from the calculator API, independent of the workflow code."""
    return GMTCalculator(model=checkpoint, device="cpu").predict(structures)


@pytest.fixture
def store():
    return JobStore(MemoryStore())


def _prediction_maker(checkpoint: str) -> TensorPredictionMaker:
    return TensorPredictionMaker(model=checkpoint, device="cpu", batch_size=8)


def _json_round_trip(obj):
    return json.loads(json.dumps(obj, cls=MontyEncoder), cls=MontyDecoder)


def _output(store: JobStore, uuid: str):
    """Final output of a job, deserialised (jobflow's get_output returns plain dicts)."""
    return MontyDecoder().process_decoded(store.get_output(uuid, which="last", load=True))


def _stage_indices(store: JobStore, stage: str) -> set[int]:
    return {doc["metadata"]["gmt_index"] for doc in store.query({"metadata.gmt_stage": stage})}


def test_prediction_maker_single_and_list(checkpoint, structures, store):
    maker = _prediction_maker(checkpoint)
    single = maker.make(bulk("Cu", "fcc", a=3.61))  # ASE Atoms in, one document out
    many = maker.make(structures[:3], indices=[10, 11, 12], labels=["a", "b", "c"])
    run_locally(Flow([single, many]), store=store, ensure_success=True, log=False)
    doc = _output(store, single.uuid)
    docs = _output(store, many.uuid)
    assert isinstance(doc, TensorPredictionDocument) and doc.ok
    assert [d.index for d in docs] == [10, 11, 12] and [d.label for d in docs] == ["a", "b", "c"]
    assert np.shape(doc.elastic) == (6, 6) and np.shape(doc.piezoelectric) == (3, 6)
    assert doc.symmetry.space_group_number == 225 and doc.units["elastic"] == "GPa"
    assert doc.provenance.model_name == "test-tiny" and len(doc.provenance.checkpoint_sha256) == 64
    assert doc.derived["k_vrh"] > 0


def test_documents_and_makers_round_trip_json(checkpoint, structures):
    from atomate2.vasp.flows.elastic import ElasticMaker
    from atomate2.vasp.jobs.core import DielectricMaker

    maker = _prediction_maker(checkpoint)
    (doc,) = maker.predict_documents(structures[:1], [0], ["mp-30"])
    for back in (_json_round_trip(doc), TensorPredictionDocument.model_validate_json(doc.model_dump_json())):
        assert isinstance(back, TensorPredictionDocument) and back == doc
    assert json.dumps(jsanitize(doc, strict=True))  # plain JSON, no numpy left
    prescreen = TensorPrescreenMaker(
        prediction_maker=maker,
        criteria={"or": [{"k_vrh": (">", 150)}, {"eps_electronic_mean": (">", 10)}]},
        top_k=3,
        rank_by="k_vrh",
        expensive_makers={"elastic": ElasticMaker(), "dft": DielectricMaker(), "emt": EMTElasticMaker()},
    )
    back = _json_round_trip(prescreen)
    assert isinstance(back, TensorPrescreenMaker)
    assert json.dumps(back, cls=MontyEncoder) == json.dumps(prescreen, cls=MontyEncoder)
    assert type(back.expensive_makers["dft"]) is DielectricMaker
    flow = prescreen.make(structures[:4])
    flow_back = Flow.from_dict(json.loads(json.dumps(flow.as_dict(), cls=MontyEncoder)))
    assert [job.name for job in flow_back] == [job.name for job in flow]


def test_prescreen_runs_exactly_the_selected_structures(checkpoint, structures, direct_predictions, store):
    k = np.array([p.derived["k_vrh"] for p in direct_predictions])
    eps = np.array([p.derived["eps_electronic_mean"] for p in direct_predictions])
    k_cut, eps_cut = np.percentile(k, 70), np.percentile(eps, 80)
    expected = {i for i in range(len(structures)) if k[i] > k_cut or eps[i] > eps_cut}
    assert 0 < len(expected) < len(structures)
    maker = TensorPrescreenMaker(
        prediction_maker=_prediction_maker(checkpoint),
        chunk_size=6,
        criteria={"or": [{"k_vrh": (">", float(k_cut))}, {"eps_electronic_mean": (">", float(eps_cut))}]},
        expensive_makers={"elastic": EMTElasticMaker()},
    )
    flow = maker.make(structures, labels=[f"s{i}" for i in range(len(structures))])
    assert sum("gmt tensor prediction" in job.name for job in flow) == 4  # 20 structures in chunks of 6
    flow = Flow.from_dict(json.loads(json.dumps(flow.as_dict(), cls=MontyEncoder)))  # run the JSON copy
    # Worker routing as in the README (jobflow-remote's set_run_config does this update_config).
    flow.update_config({"manager_config": {"worker": "gpu"}}, name_filter="gmt tensor prediction")
    flow.update_config({"manager_config": {"worker": "hpc"}}, name_filter=STAGE_TAG)
    flow.update_config({"manager_config": {"worker": "cpu"}}, name_filter="gmt prescreen selection")
    responses = run_locally(flow, store=store, ensure_success=True, log=False)
    stage_flow = responses[flow.jobs[-1].uuid][1].replace
    workers = {job.name: job.config.manager_config.get("worker") for job in stage_flow}
    assert {w for name, w in workers.items() if STAGE_TAG in name} == {"hpc"}
    assert workers["gmt prescreen comparison"] is None  # the selection's worker did not leak
    assert {job.config.manager_config["worker"] for job in flow.jobs[:-1]} == {"gpu"}
    result = _output(store, flow.output.uuid)
    assert isinstance(result, PrescreenDocument)
    assert set(result.selected_indices) == expected
    assert _stage_indices(store, "elastic") == expected  # exactly those reached the expensive tier
    assert all(STAGE_TAG in doc["name"] for doc in store.query({"metadata.gmt_stage": "elastic"}))
    assert {c.index for c in result.comparisons} == expected and all(c.ok for c in result.comparisons)
    for comparison in result.comparisons:
        (elastic,) = comparison.tensors
        assert elastic.fnorm >= 0 and comparison.scalars["k_vrh"]["dft"] > 0
        assert np.allclose(comparison.rotation, np.eye(3))
    by_index = {doc.index: doc for doc in result.selected}
    for i in expected:  # the workflow documents carry the calculator's own numbers
        assert np.allclose(by_index[i].elastic, direct_predictions[i].elastic)
        assert by_index[i].label == f"s{i}"


def test_failing_structures_do_not_lose_the_others(checkpoint, structures, store):
    overlapping = Structure(Lattice.cubic(3.6), ["Cu", "Cu"], [[0, 0, 0], [0.01, 0, 0]])
    unsupported = Structure(Lattice.cubic(3.5), ["Cf"], [[0, 0, 0]])  # Z=98: not in the model
    items = [*structures[:3], overlapping, structures[3], unsupported]
    maker = TensorPrescreenMaker(
        prediction_maker=_prediction_maker(checkpoint),
        chunk_size=3,
        criteria=None,
        expensive_makers={"elastic": EMTElasticMaker()},
        top_k=1,
        rank_by="k_vrh",
    )
    flow = maker.make(items)
    run_locally(flow, store=store, ensure_success=True, log=False)
    result = _output(store, flow.output.uuid)
    assert result.n_structures == 6 and result.n_failed == 2
    failures = {f["index"]: f for f in result.failures}
    assert set(failures) == {3, 5}
    assert failures[3]["error_type"] == "AtomsTooCloseError"
    assert failures[5]["error_type"] == "UnsupportedElementError"
    chunk = _output(store, flow.jobs[1].uuid)  # the chunk holding the overlapping atoms
    assert [d.ok for d in chunk] == [False, True, False] and chunk[1].elastic is not None
    assert len(result.selected_indices) == 1 and result.selected_indices[0] not in failures


def test_vasp_stage_generates_input_sets(checkpoint, structures):
    from atomate2.vasp.flows.elastic import ElasticMaker
    from atomate2.vasp.jobs.core import DielectricMaker

    docs = _prediction_maker(checkpoint).predict_documents(structures[:4], list(range(4)), [None] * 4)
    makers = {"elastic": ElasticMaker(), "polar": DielectricMaker()}
    response = select_candidates.original([docs], criteria=None, top_k=2, rank_by="k_vrh", expensive_makers=makers)
    selected = response.output.selected_indices
    names = [job.name for job in response.replace]
    for index in selected:
        assert any(f"[{STAGE_TAG} polar #{index}]" in name for name in names)
        assert any(f"[{STAGE_TAG} elastic #{index}]" in name for name in names)
    assert names[-1] == "gmt prescreen comparison"
    for index in selected:
        structure = docs[index].structure
        dielectric = vasp_input_sets(makers["polar"], structure)
        (incar_text,) = [files["INCAR"] for files in dielectric.values()]
        assert "LEPSILON = True" in incar_text and "IBRION = 8" in incar_text
        elastic = vasp_input_sets(makers["elastic"], structure)
        assert len(elastic) == 3  # two tight relaxations and the deformation relaxation template
        for files in elastic.values():
            assert set(files) >= {"INCAR", "KPOINTS", "POSCAR", "POTCAR.spec"}
            assert files["POTCAR.spec"].split()[0] in {"Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Al"}


def test_fireworks_runs_the_same_flow(checkpoint, structures, store, monkeypatch, tmp_path):
    mongomock = pytest.importorskip("mongomock")
    pytest.importorskip("fireworks")
    import bson
    import fireworks.core.launchpad as launchpad_module
    from fireworks import FWorker, LaunchPad
    from fireworks.core.rocket_launcher import rapidfire
    from jobflow import SETTINGS
    from jobflow.managers.fireworks import flow_to_workflow

    monkeypatch.setattr(launchpad_module, "MongoClient", mongomock.MongoClient)
    monkeypatch.setattr(launchpad_module.gridfs, "GridFS", lambda *args, **kwargs: None)  # only >16 MB docs
    monkeypatch.setattr(SETTINGS, "JOB_STORE", store)  # JobFiretask uses it when the spec has no store
    monkeypatch.chdir(tmp_path)
    items = structures[:8]
    maker = TensorPrescreenMaker(
        prediction_maker=_prediction_maker(checkpoint),
        chunk_size=3,
        top_k=2,
        rank_by="k_vrh",
        expensive_makers={"elastic": EMTElasticMaker()},
    )
    flow = maker.make(items)
    launchpad = LaunchPad(host="localhost", port=27017, name="gmt_fws_test")
    launchpad.reset("", require_password=False)
    launchpad.add_wf(flow_to_workflow(flow))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rapidfire(launchpad, FWorker(), nlaunches=0, sleep_time=0, strm_lvl="ERROR")
    states = {launchpad.get_fw_by_id(i).state for i in launchpad.get_fw_ids()}
    assert states == {"COMPLETED"}
    assert len(launchpad.get_fw_ids()) == 3 + 1 + 2 + 1 + 1  # chunks, selection, 2 EMT, comparison, store
    for collection in (launchpad.fireworks, launchpad.launches):
        for doc in collection.find({}):
            bson.encode(doc)  # what a real MongoDB would have to accept
    result = _output(store, flow.output.uuid)
    k = [p.derived["k_vrh"] for p in GMTCalculator(model=checkpoint, device="cpu").predict(items)]
    assert result.selected_indices == list(np.argsort(k)[::-1][:2])
    assert _stage_indices(store, "elastic") == set(result.selected_indices)
    assert all(c.ok for c in result.comparisons)


def test_emt_stand_in_matches_atomate2_forcefield_elastic_flow(structures, monkeypatch, tmp_path):
    """Middle tier: atomate2's force-field ElasticMaker with EMT, used as an expensive maker."""
    monkeypatch.chdir(tmp_path)  # atomate2's ASE jobs write final_atoms_object.xyz into the cwd
    from atomate2.forcefields.flows.elastic import ElasticMaker
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker

    from gmt_ase.workflows.compare import extract_dft_tensors

    relax = ForceFieldRelaxMaker(
        force_field_name={"@module": "ase.calculators.emt", "@callable": "EMT"},
        relax_cell=False,
        relax_kwargs={"fmax": 1e-5},
    )
    ff_maker = ElasticMaker(bulk_relax_maker=None, elastic_relax_maker=relax)
    structure = structures[0]  # fcc Cu primitive cell
    flow = ff_maker.make(structure)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})  # atomate2 force-field docs
    run_locally(flow, store=store, ensure_success=True, log=False)
    ff_tensors, _ = extract_dft_tensors(_output(store, flow.output.uuid))
    ours = EMTElasticMaker().stiffness(structure)
    assert np.allclose(ours, ff_tensors["elastic"], atol=0.02 * np.abs(ours).max())


def test_jobflow_remote_routing_as_in_the_readme(checkpoint, structures, store):
    """The README's jobflow-remote calls, for real (set_run_config needs no MongoDB), route every job."""
    jobflow_remote = pytest.importorskip("jobflow_remote")
    maker = TensorPrescreenMaker(
        prediction_maker=_prediction_maker(checkpoint),
        chunk_size=6,
        top_k=2,
        rank_by="k_vrh",
        expensive_makers={"elastic": EMTElasticMaker()},
    )
    flow = maker.make(structures[:8])
    jobflow_remote.set_run_config(
        flow,
        name_filter="gmt tensor prediction",
        worker="gpu_worker",
        exec_config="torch_gpu",
        resources={"gres": "gpu:1", "time": "01:00:00"},
    )
    jobflow_remote.set_run_config(
        flow,
        name_filter=STAGE_TAG,
        worker="hpc_worker",
        exec_config="vasp",
        resources={"nodes": 1, "ntasks_per_node": 128, "time": "12:00:00"},
        dynamic=True,
    )
    predictions = [job for job in flow if "gmt tensor prediction" in job.name]
    assert len(predictions) == 2
    assert {job.config.manager_config["worker"] for job in predictions} == {"gpu_worker"}
    assert {job.config.manager_config["exec_config"] for job in predictions} == {"torch_gpu"}
    responses = run_locally(flow, store=store, ensure_success=True, log=False)
    stage_flow = responses[flow.jobs[-1].uuid][1].replace  # the DFT stand-ins, created by the selection job
    stages = [job for job in stage_flow if STAGE_TAG in job.name]
    assert len(stages) == 2
    for job in stages:
        assert job.config.manager_config["worker"] == "hpc_worker"
        assert job.config.manager_config["resources"]["ntasks_per_node"] == 128
    others = [job for job in stage_flow if STAGE_TAG not in job.name]
    assert all(job.config.manager_config.get("worker") is None for job in others)  # default worker
