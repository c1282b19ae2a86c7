"""Per-crystal spreads (issue 21): plain data, growing off the training data, invariant and continuous."""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

import numpy as np
import pytest
import torch
from ase.build import bulk, make_supercell
from conftest import build_nacl, build_silicon, build_wurtzite_zno  # plain builders (tests/ is on sys.path)
from pymatgen.io.ase import AseAtomsAdaptor

from gmt_ase.inference.crystal_spread import chunk_log_sigmas
from gmt_ase.inference.members import capture_member_outputs, member_invariants
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.spread import FEATURES, CrystalSpread, SpreadModel
from gmt_ase.invariant.uncertainty import scale_uncertainty
from gmt_ase.testing import random_orthogonal, transform_atoms
from gmt_ase.training.spread_fit import fit_model, fit_reference, reference_spread, smooth_columns

UNIT_WEIGHTS = SpreadModel(np.log(0.2), np.zeros(len(FEATURES)), np.ones(len(FEATURES)), np.full(len(FEATURES), 0.3))


def toy_spread(reference: np.ndarray, keep: np.ndarray | None = None) -> CrystalSpread:
    """A spread whose reference crystals are the rows of ``reference`` (all families), unit feature weights."""
    keep = np.arange(reference.shape[1]) if keep is None else keep
    fitted = fit_reference(reference, [7] * len(reference), [np.array([11, 17])] * len(reference), keep)
    return reference_spread(fitted, dict.fromkeys(INVARIANTS, UNIT_WEIGHTS))


def values(n: int) -> dict[str, np.ndarray]:
    return {name: np.full(n, 10.0 + offset) for name, offset in INVARIANTS.items()}


def test_plain_data_round_trip_gives_the_same_sigmas():
    rng = np.random.default_rng(0)
    spread = toy_spread(rng.normal(size=(50, 6)))
    again = CrystalSpread.from_dict(spread.to_dict())
    query = rng.normal(size=(4, 6))
    numbers = [np.array([11, 17])] * 4
    one, two = spread.log_sigmas(values(4), None, query, numbers), again.log_sigmas(values(4), None, query, numbers)
    for name in INVARIANTS:
        np.testing.assert_allclose(one[name], two[name], rtol=1e-6)
    with pytest.raises(ValueError, match="descriptors"):
        spread.project(np.zeros((1, 5)))


def test_sigma_grows_off_the_training_data_and_with_rare_elements():
    rng = np.random.default_rng(1)
    spread = toy_spread(rng.normal(size=(200, 6)))
    near, far = np.zeros((1, 6)), np.full((1, 6), 6.0)
    common, rare = [np.array([11, 17])], [np.array([11, 90])]  # thorium: in no training crystal
    sigma = {
        key: spread.log_sigmas(values(1), None, x, z)["k_vrh"][0]
        for key, x, z in (("near", near, common), ("far", far, common), ("rare", near, rare))
    }
    assert sigma["far"] > 1.5 * sigma["near"]
    assert sigma["rare"] > 1.5 * sigma["near"]  # rarity -log(1 + count) is 0 for an unseen element
    assert spread.rarity(rare, "dielectric")[0] == 0.0 and spread.rarity(common, "dielectric")[0] < -5


def test_distance_is_continuous_when_the_nearest_neighbour_changes():
    reference = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0], [-5.0, 5.0], [5.0, -5.0], [-5.0, -5.0]])
    spread = toy_spread(np.repeat(reference, 2, axis=0))
    path = np.stack([np.linspace(-0.5, 1.5, 2001), np.zeros(2001)], axis=1)
    d = spread.distances(spread.project(path), "elastic")
    assert np.abs(np.diff(d)).max() < 5e-3  # no jump at x = 0.5, where the nearest crystal switches


def test_member_capture_records_every_member_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)

    class Member(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.rand(()) + 1.0)

        def forward(self, batch: dict) -> dict:
            eye = torch.eye(3).expand(len(batch["x"]), 3, 3)
            elastic = torch.einsum("ij,kl->ijkl", torch.eye(3), torch.eye(3)).expand(len(batch["x"]), 3, 3, 3, 3)
            return {
                "dielectric_electronic": eye * 2 * self.scale,
                "dielectric_ionic": eye * self.scale,
                "piezoelectric": torch.zeros(len(batch["x"]), 3, 3, 3),
                "elastic": elastic * 100 * self.scale,
            }

    class Ensemble(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = torch.nn.ModuleList([Member(), Member(), Member()])

        def forward(self, batch: dict) -> dict:
            outs = [m(batch) for m in self.members]
            return {k: torch.stack([o[k] for o in outs]).mean(0) for k in outs[0]}

    model, batch = Ensemble(), {"x": torch.zeros(2)}
    with capture_member_outputs(model) as calls:
        model(batch)
        model(batch)
    assert len(calls) == 2 and all(len(call) == 3 for call in calls)
    invariants = member_invariants(calls[0])
    scales = np.array([m.scale.item() for m in model.members])
    np.testing.assert_allclose(invariants["eps_electronic_mean"][:, 0], 2 * scales, rtol=1e-6)
    np.testing.assert_allclose(invariants["eps_total_mean"][:, 1], 3 * scales, rtol=1e-6)
    assert all(not m._forward_hooks for m in model.members) and not model._forward_hooks
    with capture_member_outputs(torch.nn.Linear(1, 1)) as nothing:
        pass
    assert nothing == []


def test_fitted_sigmas_rank_errors_and_cover_95_percent():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(2000, len(FEATURES)))
    true_sigma = np.exp(-2.0 + 0.8 * features[:, 1])  # only blend_shift matters
    errors = np.abs(rng.normal(size=2000) * true_sigma)
    model, summary = fit_model(features[:1000], errors[:1000])
    sigma = np.exp(model.log_sigma(features[1000:]))
    assert abs(np.mean(errors[1000:] <= 1.96 * sigma) - 0.95) < 0.03
    assert np.corrcoef(np.log(sigma), np.log(true_sigma[1000:]))[0, 1] > 0.9
    assert summary["blend_shift"] > 0.5 and abs(summary["distance"]) < 0.2


def test_smoothness_screen_drops_columns_that_jump_under_a_rattle():
    rng = np.random.default_rng(3)
    plain = rng.normal(size=(100, 3))
    rattled = plain + rng.normal(scale=1e-3, size=plain.shape)
    rattled[::10, 1] += 1.0  # a point-group order: jumps for some crystals
    assert list(smooth_columns(plain, rattled, np.ones(3))) == [0, 2]


def test_scaled_uncertainty_follows_the_crystal_sigma():
    global_sigma = dict.fromkeys(INVARIANTS, 0.2)
    base = {
        **dict.fromkeys(INVARIANTS, 2.0),
        "eij_max": 0.1,
        "dielectric_electronic": np.ones((3, 3)),
        "dielectric_ionic": np.ones((3, 3)),
        "piezoelectric": np.ones((3, 3, 3)),
        "elastic": np.ones((3, 3, 3, 3)),
    }
    own = {**global_sigma, "k_vrh": 0.4, "g_vrh": 0.1, "piezo_norm": 0.6}
    out = scale_uncertainty(base, global_sigma, own)
    assert out["k_vrh"] == pytest.approx(4.0) and out["g_vrh"] == pytest.approx(1.0)
    assert out["eij_max"] == pytest.approx(0.3) and out["eps_total_mean"] == pytest.approx(2.0)
    np.testing.assert_allclose(out["elastic"], 1.0)  # sqrt(2 * 0.5)
    np.testing.assert_allclose(out["piezoelectric"], 3.0)


@pytest.fixture(scope="module")
def tiny_ensemble_predictor():
    """A seeded two-member tiny ensemble with the shipped invariant model (loads in seconds)."""
    from gmt_ase.inference.io import tiny_model_config
    from gmt_ase.inference.predictor import TensorPredictor
    from gmt_ase.nn.model import GMTEnsemble

    torch.manual_seed(0)
    config = tiny_model_config()
    shipped = torch.load(resources.files("gmt_ase.models") / "default.pt", map_location="cpu", weights_only=True)
    metadata = {
        "species": list(range(1, 95)),
        "cutoff": shipped["cutoff"],
        "invariant_model": shipped["invariant_model"],
        "uncertainty": shipped["uncertainty"],
    }
    return TensorPredictor(GMTEnsemble(config, 2), metadata, "test", device="cpu", dtype=torch.float64)


def _inputs(predictor, atoms_list):
    from gmt_ase.predict import prepare_crystal

    crystals = [prepare_crystal(AseAtomsAdaptor.get_structure(a), predictor)[0] for a in atoms_list]
    graphs = predictor.graphs(crystals)
    with capture_member_outputs(predictor.model) as calls:
        results = predictor.predict(crystals, batch_size=len(crystals))
    model = predictor.invariant_model
    descriptors = model.columns(model.all_descriptors(graphs, [c.cell for c in crystals]))
    return crystals, graphs, calls, results, descriptors


def test_spread_inputs_are_invariant_and_continuous(tiny_ensemble_predictor):
    """Members, descriptors, elements, error score: the same sigma for every cell and orientation, ~ after a rattle.

    Every variant is given the first one's predicted invariants, so this isolates the spread's own inputs
    (the predictions' invariance is the physics-guarantee checks' business).
    """
    predictor = tiny_ensemble_predictor
    zno = build_wurtzite_zno()
    rng = np.random.default_rng(5)
    rattled = zno.copy()
    rattled.positions += rng.normal(scale=0.01, size=rattled.positions.shape)
    variants = [
        zno,
        make_supercell(zno, [[1, 1, 0], [0, 1, 1], [1, 0, 1]]),
        zno.repeat((1, 2, 1)),
        transform_atoms(zno, random_orthogonal(4)),
        rattled,
    ]
    references = [build_nacl(), build_silicon(), bulk("MgO", "rocksalt", a=4.21), bulk("GaAs", "zincblende", a=5.75)]
    crystals, graphs, calls, results, descriptors = _inputs(predictor, [*variants, *references])
    n = len(variants)
    keep = smooth_columns(descriptors[:1], descriptors[n - 1 : n], descriptors.std(axis=0) + 1e-3)
    shipped_errors = predictor.calibration["crystal_spread"].error_model
    assert shipped_errors is not None  # the shipped error model's score is part of the check
    spread = replace(toy_spread(np.vstack([descriptors[n:] + 0.05 * k for k in range(4)]), keep),
                     error_model=shipped_errors)
    predictor.calibration = {**predictor.calibration, "crystal_spread": spread}
    sigmas = chunk_log_sigmas(
        predictor,
        crystals[:n],
        graphs[:n],
        [[{k: v[:n] for k, v in m.items()} for m in calls[-1]]],
        [results[0]] * n,
        descriptors[:n],
    )
    for name in INVARIANTS:
        np.testing.assert_allclose(sigmas[name][1:4], sigmas[name][0], rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(sigmas[name][4], sigmas[name][0], rtol=0.02, err_msg=name)
    assert len(keep) < descriptors.shape[1]  # the rattle moved some columns: they are out of the distance


def test_format_one_spreads_still_load_with_the_error_score_unused():
    """Checkpoints calibrated before version 9 (six features, no error model) keep their sigmas."""
    rng = np.random.default_rng(3)
    spread = toy_spread(rng.normal(size=(50, 6)))
    old = spread.to_dict()
    old["format_version"] = 1
    del old["error_model"]
    for model in old["models"].values():
        for key in ("centre", "scale", "weights"):
            model[key] = model[key][:-1]
    loaded = CrystalSpread.from_dict(old)
    query, numbers = rng.normal(size=(4, 6)), [np.array([11, 17])] * 4
    expected = {  # the six old features only: the toy weights without error_score's 0.3 * (0 - 0) / 1
        name: np.exp(np.log(0.2) + 2.5 * np.tanh(f[:, :-1] @ np.full(len(FEATURES) - 1, 0.3) / 2.5))
        for name, f in spread.features(values(4), None, query, numbers).items()
    }
    got = loaded.log_sigmas(values(4), None, query, numbers)
    for name in INVARIANTS:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6)  # components stored as float32
    assert loaded.error_model is None
    old["models"]["k_vrh"]["weights"] = [0.0] * 3
    with pytest.raises(ValueError, match="format-1"):
        CrystalSpread.from_dict(old)
    with pytest.raises(ValueError, match="format 7"):
        CrystalSpread.from_dict({**old, "format_version": 7})
