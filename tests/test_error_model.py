"""The learned error model of the per-crystal spread (issue 21): it ranks errors, is smooth and safe to store."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from gmt_ase.invariant.error_model import ErrorModel
from gmt_ase.invariant.invariant_model import INVARIANTS
from gmt_ase.invariant.spread import FEATURES, CrystalSpread, SpreadModel
from gmt_ase.training.error_model_fit import fit_error_model, out_of_fold
from gmt_ase.training.spread_fit import fit_reference, reference_spread


def heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Descriptors, DFT invariants and noise: the log value is a smooth function of the descriptors plus noise
    ten times larger where ``x0 > 0.5`` (the "hard" crystals an error model must find)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(n, 4))
    noise = rng.normal(size=n) * np.where(x[:, 0] > 0.5, 0.5, 0.05)
    log_value = 3.0 + 0.5 * x[:, 1] + noise
    truths = {name: offset + np.exp(log_value) for name, offset in INVARIANTS.items()}
    truths["piezo_norm"][: n // 2] = np.nan  # crystals without a tensor of this kind are left out
    return x, truths, noise


@pytest.fixture(scope="module")
def fitted() -> tuple[ErrorModel, dict]:
    x, truths, _ = heteroscedastic(600, seed=0)
    return fit_error_model(x, truths, np.full(4, 0.02))


def test_out_of_fold_predictions_never_see_their_own_crystal():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 3))
    y = rng.normal(size=300)  # pure noise: trees that saw a crystal would fit it, held-out ones cannot
    oof = out_of_fold(x, y)
    assert np.all(np.isfinite(oof))
    assert np.corrcoef(oof, y)[0, 1] < 0.2


def test_error_score_ranks_the_hard_crystals_first(fitted):
    model, summary = fitted
    x, truths, noise = heteroscedastic(400, seed=1)
    for name in INVARIANTS:
        log_value = np.log(truths["k_vrh"] - INVARIANTS["k_vrh"])
        score = model.score(name, x, log_value)
        assert score[x[:, 0] > 0.5].mean() > score[x[:, 0] < 0.3].mean() + 1.0, name
        assert spearmanr(score, np.abs(noise)).correlation > 0.4, name
    assert summary["piezo_norm"]["n"] == 300


def test_error_score_is_continuous_at_its_splits(fitted):
    """Smooth splits: no jump when a descriptor crosses a threshold (x0 = 0.5 separates easy and hard)."""
    model, _ = fitted
    path = np.zeros((4001, 4))
    path[:, 0] = np.linspace(0.3, 0.7, 4001)
    score = model.score("g_vrh", path, np.full(4001, 3.0))
    assert np.abs(np.diff(score)).max() < 0.01
    assert score[-1] - score[0] > 1.0


def test_round_trip_and_refusals(fitted):
    model, _ = fitted
    again = ErrorModel.from_dict(model.to_dict())
    x = np.random.default_rng(2).uniform(-1, 1, size=(20, 4))
    np.testing.assert_array_equal(again.score("k_vrh", x, np.full(20, 3.0)), model.score("k_vrh", x, np.full(20, 3.0)))
    with pytest.raises(ValueError, match="descriptors"):
        model.score("k_vrh", x[:, :3], np.zeros(20))
    with pytest.raises(ValueError, match="format"):
        ErrorModel.from_dict({**model.to_dict(), "format_version": 99})
    with pytest.raises(ValueError, match="unknown invariants"):
        ErrorModel({"bulk_modulus": model.trees["k_vrh"]}, model.split_widths)
    with pytest.raises(ValueError, match="widths"):
        ErrorModel(model.trees, model.split_widths[:3])


def test_spread_reads_the_error_score_and_keeps_it_through_storage(fitted):
    """A spread with the error model gives larger sigmas to the hard crystals; one without it cannot."""
    model, _ = fitted
    x, _, _ = heteroscedastic(200, seed=4)
    reference = fit_reference(x, [7] * len(x), [np.array([11, 17])] * len(x), np.arange(4))
    only_error = np.zeros(len(FEATURES))
    only_error[FEATURES.index("error_score")] = 1.0
    weights = SpreadModel(np.log(0.1), np.zeros(len(FEATURES)), np.ones(len(FEATURES)), only_error)
    spread = reference_spread(reference, dict.fromkeys(INVARIANTS, weights), model)
    stored = CrystalSpread.from_dict(spread.to_dict())
    easy, hard = np.array([[0.0, 0.0, 0.0, 0.0]]), np.array([[0.9, 0.0, 0.0, 0.0]])
    values = {name: np.full(1, offset + 20.0) for name, offset in INVARIANTS.items()}
    numbers = [np.array([11, 17])]
    for name in INVARIANTS:
        sigma_easy = stored.log_sigmas(values, None, easy, numbers)[name][0]
        sigma_hard = stored.log_sigmas(values, None, hard, numbers)[name][0]
        assert sigma_hard > 2.0 * sigma_easy, name
    blind = reference_spread(reference, dict.fromkeys(INVARIANTS, weights))
    assert blind.log_sigmas(values, None, hard, numbers)["k_vrh"][0] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="error model reads"):
        reference_spread(fit_reference(x[:, :3], [7] * len(x), [np.array([11, 17])] * len(x), np.arange(3)),
                         dict.fromkeys(INVARIANTS, weights), model)
