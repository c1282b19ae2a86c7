"""Prescreen crystals with GMTNet, run an expensive tier on the selection only, compare, and show the VASP inputs.

What it does (runs locally in seconds, no VASP, no database):

1. predicts dielectric, piezoelectric and elastic tensors for 10 bulk metals and ionic crystals;
2. selects the 3 stiffest (predicted K_VRH) among the crystals that ASE's EMT potential can handle;
3. runs ``EMTElasticMaker``, a STAND-IN for atomate2's VASP ``ElasticMaker``, on those 3 only;
4. prints ML vs stand-in (Fnorm, relative error, K/G) from the flow's ``PrescreenDocument``;
5. prints the VASP input sets that atomate2's ``ElasticMaker`` and ``DielectricMaker`` would write for
   the selected and for the most polarisable structures (``potcar_spec=True``: no POTCARs needed). The
   DFPT candidates exclude every structure with an applicability warning (the metals here: a metal has
   no finite eps_inf, so its predicted dielectric tensor means nothing); with a model that reports
   uncertainties, they are the crystals most likely to have mean eps_total > 20.

Usage::

    python examples/prescreen_flow.py                  # shipped model
    python examples/prescreen_flow.py --model my.pt    # a checkpoint
    python examples/prescreen_flow.py --test-model     # tiny untrained model (numbers are meaningless)
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

from ase.build import bulk
from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore
from monty.json import MontyDecoder
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.workflows import (
    EMTElasticMaker,
    TensorPredictionMaker,
    TensorPrescreenMaker,
    select_indices,
    vasp_input_sets,
)

EMT_ELEMENTS = ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]


def structures() -> list[Structure]:
    """Five fcc metals and five ionic crystals."""
    atoms = [bulk(el, "fcc", a=a) for el, a in [("Cu", 3.61), ("Al", 4.05), ("Ni", 3.52), ("Au", 4.08), ("Pt", 3.92)]]
    atoms += [bulk("NaCl", "rocksalt", a=5.64), bulk("MgO", "rocksalt", a=4.21), bulk("CsCl", "cesiumchloride", a=4.12)]
    ionic = [AseAtomsAdaptor.get_structure(a) for a in atoms]
    ionic.append(
        Structure.from_spacegroup(
            "P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"], [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.382]]
        )
    )  # wurtzite ZnO
    ionic.append(
        Structure.from_spacegroup(
            "P4mm",
            Lattice.tetragonal(3.99, 4.04),
            ["Ba", "Ti", "O", "O"],
            [[0, 0, 0], [0.5, 0.5, 0.515], [0.5, 0.5, -0.025], [0.5, 0, 0.485]],
        )
    )  # tetragonal BaTiO3
    return ionic


def model_path(args: argparse.Namespace) -> str:
    if args.test_model:
        from gmt_ase.inference.io import make_test_checkpoint

        print("Using a tiny UNTRAINED test model: the numbers below only show the plumbing.\n")
        return str(make_test_checkpoint(tempfile.mkdtemp() + "/tiny.pt"))
    return args.model


def show_predictions(summary, docs) -> None:
    print(f"{'#':>2} {'formula':8} {'space group':12} {'K_VRH':>7} {'G_VRH':>7} {'eps_inf':>7} {'eij_max':>8}"
          "  warnings")
    for doc in docs:
        if not doc.ok:
            print(f"{doc.index:>2} {doc.formula or '?':8} FAILED {doc.error_type}: {doc.error}")
            continue
        d = doc.derived
        mark = " <- selected" if doc.index in summary.selected_indices else ""
        print(
            f"{doc.index:>2} {doc.formula:8} {doc.symmetry.space_group_symbol:12} {d['k_vrh']:7.1f} "
            f"{d['g_vrh']:7.1f} {d['eps_electronic_mean']:7.2f} {d['eij_max']:8.3f}  {len(doc.warnings)}{mark}"
        )
    notes = {doc.uncertainty_note for doc in docs if doc.ok and doc.uncertainty_note}
    for note in notes:
        print(f"note: {note}")
    for doc in docs:
        for warning in doc.warnings if doc.ok else []:
            print(f"warning #{doc.index} {doc.formula}: {warning}")


def show_comparisons(summary) -> None:
    print("\nML vs EMT stand-in (elastic, GPa; frame: Cartesian frame of the input structure)")
    for c in summary.comparisons:
        if not c.ok:
            print(f"  #{c.index} {c.formula}: {c.error}")
            continue
        (t,) = c.tensors
        k, g = c.scalars["k_vrh"], c.scalars["g_vrh"]
        print(
            f"  #{c.index} {c.formula:6} Fnorm {t.fnorm:7.1f}  rel {t.relative_error:5.2f}  "
            f"K ml/emt {k['ml']:6.1f}/{k['dft']:6.1f}  G ml/emt {g['ml']:6.1f}/{g['dft']:6.1f}"
        )


def show_vasp_inputs(maker, structure, title: str) -> None:
    for job_name, files in vasp_input_sets(maker, structure).items():
        incar = " ".join(
            line.replace(" = ", "=")
            for line in files["INCAR"].splitlines()
            if line.split(" = ")[0] in {"IBRION", "ISIF", "LEPSILON", "ENCUT", "EDIFF", "NSW"}
        )
        kpts = files["KPOINTS"].splitlines()[3].strip()
        print(f"  {title}: {job_name}\n      INCAR {incar} | k-mesh {kpts} | POTCAR {files['POTCAR.spec'].split()}")


def dfpt_criteria(docs) -> dict:
    """DFPT candidates: no applicability warning (no metals, slabs, squeezed cells, ...).

    With uncertainties, also ``P(mean eps_total > 20) >= 0.1`` under the calibrated normal distribution.
    """
    no_warning = {"n_warnings": ("==", 0)}
    if all(doc.uncertainty is not None for doc in docs if doc.ok):
        return {"and": [no_warning, {"eps_total_mean": ("P>", 20, 0.1)}]}
    return no_warning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' or a checkpoint path")
    parser.add_argument("--test-model", action="store_true", help="use a tiny untrained test model")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    items = structures()
    prediction_maker = TensorPredictionMaker(model=model_path(args), device="cpu")
    maker = TensorPrescreenMaker(
        prediction_maker=prediction_maker,
        chunk_size=4,  # 3 prediction jobs: on a cluster they run in parallel
        criteria={"and": [{"elements": ("subset", EMT_ELEMENTS)}, {"born_stable": ("==", True)}]},
        top_k=3,
        rank_by="k_vrh",
        expensive_makers={"elastic": EMTElasticMaker()},  # stand-in for atomate2.vasp.flows.elastic
    )
    flow = maker.make(items)
    store = JobStore(MemoryStore())
    run_locally(flow, store=store, ensure_success=True, log=False)
    summary = MontyDecoder().process_decoded(store.get_output(flow.output.uuid, which="last", load=True))
    docs = [
        doc for job in flow.jobs[:-1] for doc in MontyDecoder().process_decoded(store.get_output(job.uuid, load=True))
    ]

    print(
        f"Model: {summary.provenance.model_name} {summary.provenance.model_version} "
        f"(sha256 {str(summary.provenance.checkpoint_sha256)[:12]}...)\n"
    )
    show_predictions(summary, docs)
    show_comparisons(summary)

    from atomate2.vasp.flows.elastic import ElasticMaker
    from atomate2.vasp.jobs.core import DielectricMaker

    polar = select_indices(docs, dfpt_criteria(docs), top_k=2, rank_by="eps_total_mean")  # most polarisable
    print("\nVASP jobs that would replace the stand-in (atomate2 input sets, potcar_spec=True):")
    for index in summary.selected_indices:
        show_vasp_inputs(ElasticMaker(), docs[index].structure, f"#{index} {docs[index].formula} elastic")
    for index in polar:
        show_vasp_inputs(DielectricMaker(), docs[index].structure, f"#{index} {docs[index].formula} DFPT")


if __name__ == "__main__":
    main()
