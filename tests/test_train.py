"""Training loop, resume, determinism, command line and losses, on a tiny copy of the real data.

The module-scoped ``tiny_data`` fixture copies a few small crystals (<= 6 atoms) of every source file
under ``data/`` into the same relative paths, keeping the original record dicts, so the loaders' frame
checks run on them. Runs use a tiny model on the CPU and take about a second per fresh run.
"""

from __future__ import annotations

import gzip
import json
import math
import pickle
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.analysis.elasticity import ElasticTensor

import gmt_ase.training.averaging as averaging
import gmt_ase.training.prepare as prepare_module
import gmt_ase.training.train as train_module
from gmt_ase.core.tensors import mandel_from_full, voigt_to_full
from gmt_ase.inference.io import load_checkpoint
from gmt_ase.nn.model import GMTNet, ModelConfig
from gmt_ase.training.data import SOURCE_FILES, DropReport, dataset_hash, load_records, split_by_material
from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, element_feature_table
from gmt_ase.training.losses import DEFAULT_WEIGHTS, multitask_loss, vrh_moduli
from gmt_ase.training.samples import Sample, collate_samples, load_samples, save_samples, symmetric_logm
from gmt_ase.training.train import TrainConfig, main, train

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
RECORDS_PER_SOURCE = 8
MAX_SITES = 6
TINY_MODEL = {
    "scalar_dim": 8,
    "invariant_layers": 1,
    "density_channels": [4, 2, 2, 2, 2],
    "hidden_irreps": "4x0e+2x1o+2x2e+2x2o+2x3o+2x4e",
    "product_irreps": "2x0e+1x1o+1x2e+1x3o+1x4e",
    "head_irreps": "2x0e+1x1o+1x2e+1x2o+1x3o+1x4e",
}


# ---------------------------------------------------------------------------------------------------
# helpers and fixtures


def _raw_id(raw: dict) -> str:
    return str(raw.get("material_id", raw.get("mp_id")))


def _read(path: Path) -> tuple[object, list[dict]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        content = json.load(handle)
    return content, (content["records"] if isinstance(content, dict) else content)


def _write_data(folder: Path, chosen: dict[str, tuple[object, list[dict]]], skip_ids: frozenset = frozenset()) -> Path:
    """Write each source's records at its SOURCE_FILES path, in the original container (dict or list)."""
    for source, (content, records) in chosen.items():
        kept = [raw for raw in records if _raw_id(raw) not in skip_ids]
        payload = {**content, "records": kept} if isinstance(content, dict) else kept
        path = folder / SOURCE_FILES[source]
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            json.dump(payload, handle)
    return folder


def _untrusted(raw: dict) -> bool:
    return any(marker in str(raw.get("frame_check", {}).get("frame", "")) for marker in ("repaired", "optimized"))


def _pick(records: list[dict], taken: set[str], count: int, untrusted: bool = False) -> list[dict]:
    """The first small records with a trusted (or untrusted) frame whose material is not taken yet."""
    chosen = []
    for raw in records:
        if (
            len(raw["structure"]["sites"]) > MAX_SITES
            or _raw_id(raw) in taken
            or raw.get("frame_check", {}).get("sym_residual", 0.0) > 0.01
            or _untrusted(raw) != untrusted
        ):
            continue
        chosen.append(raw)
        if len(chosen) == count:
            break
    return chosen


@pytest.fixture(scope="module")
def tiny_sources() -> dict[str, tuple[object, list[dict]]]:
    """Per source: the original file's container (description etc.) and the chosen raw records.

    Besides the trusted ones, one piezoelectric record with a repaired frame, which training must skip.
    """
    taken: set[str] = set()  # distinct materials, so no duplicate / "has full tensor" drops
    chosen = {}
    for source in SOURCE_FILES:
        content, records = _read(DATA_DIR / SOURCE_FILES[source])
        picked = _pick(records, taken, RECORDS_PER_SOURCE)
        assert len(picked) == RECORDS_PER_SOURCE, source
        if source == "piezoelectric":
            picked += _pick(records, taken, 1, untrusted=True)
            assert len(picked) == RECORDS_PER_SOURCE + 1
        taken |= {_raw_id(raw) for raw in picked}
        chosen[source] = (content, picked)
    return chosen


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory, tiny_sources: dict) -> Path:
    folder = _write_data(tmp_path_factory.mktemp("tiny_data"), tiny_sources)
    report = DropReport()
    records = load_records(folder, report=report)
    assert report.dropped == []
    assert len(records) == RECORDS_PER_SOURCE * len(SOURCE_FILES) + 1
    assert sum(not r.frame_trusted for r in records) == 1
    splits = split_by_material(records)
    assert splits["val"], "the tiny data set must have a validation crystal"
    return folder


def _config(data_dir: Path, out_dir: Path, **overrides) -> TrainConfig:
    settings = {"epochs": 2, "batch_size": 4, "device": "cpu", "model": dict(TINY_MODEL)}
    return TrainConfig(data_dir=str(data_dir), out_dir=str(out_dir), **{**settings, **overrides})


def _log(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]


def _weights(out_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(out_dir / "last.pt", map_location="cpu", weights_only=True)["model"]


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> tuple[TrainConfig, Path]:
    cfg = _config(tiny_data, tmp_path_factory.mktemp("two_epochs") / "run")
    best = train(cfg)
    return cfg, best


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory: pytest.TempPathFactory, two_epoch_run: tuple[TrainConfig, Path]) -> Path:
    """A copy of the 2-epoch run, resumed to 3 epochs with sample preparation forbidden."""
    cfg, _ = two_epoch_run
    out = tmp_path_factory.mktemp("resumed") / "run"
    shutil.copytree(cfg.out_dir, out)

    def forbidden(*args, **kwargs):
        raise AssertionError("prepare_samples called on resume: the samples cache was not reused")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(prepare_module, "prepare_samples", forbidden)
        train(_config(cfg.data_dir, out, epochs=3))
    return out


# ---------------------------------------------------------------------------------------------------
# training runs


def test_two_epoch_run_outputs(two_epoch_run: tuple[TrainConfig, Path], tiny_data: Path) -> None:
    cfg, best = two_epoch_run
    out = Path(cfg.out_dir)
    assert best == out / "best.pt"
    assert (out / "last.pt").is_file()
    assert not (out / "last.pt.tmp").exists() and not (out / "best.pt.tmp").exists()

    log = _log(out)
    assert [entry["epoch"] for entry in log] == [0, 1]
    for entry in log:
        assert math.isfinite(entry["train_loss"]) and entry["train_loss"] > 0
        assert math.isfinite(entry["val_total"]) and entry["val"]
        assert all(math.isfinite(value) for value in entry["val"].values())
        assert entry["val_total"] == pytest.approx(sum(entry["val"].values()))

    # the records the run uses: all (<= 200 atoms) but the piezo one with an untrusted frame
    every = load_records(tiny_data)
    records = [r for r in every if r.frame_trusted or r.source != "piezoelectric"]
    assert len(records) == len(every) - 1
    samples, _ = load_samples(out / "samples.pt", key=None)  # this run's own cache file
    assert sorted(s.material_id for split in samples.values() for s in split) == sorted(r.material_id for r in records)
    train_split = split_by_material(records, seed=cfg.split_seed)["train"]
    species = sorted({int(z) for r in train_split for z in r.structure.atomic_numbers})

    checkpoint = load_checkpoint(best)
    meta = checkpoint.metadata
    assert meta["species"] == species
    assert meta["data_hash"] and meta["data_hash"] == dataset_hash(records)
    assert meta["training"]["config"] == asdict(cfg)
    assert json.loads((out / "config.json").read_text()) == asdict(cfg)
    assert meta["config"]["scalar_dim"] == TINY_MODEL["scalar_dim"]
    assert meta["config"]["hidden_irreps"] == TINY_MODEL["hidden_irreps"]
    # the best epoch's validation loss is the one recorded
    best_entry = min(log, key=lambda entry: entry["val_total"])
    assert meta["metrics"]["val_loss"] == pytest.approx(best_entry["val"])
    # log offsets come from the training data, not the ModelConfig defaults
    assert checkpoint.model.config.log_offsets["elastic"] != 0.0


def test_resume_continues_and_reuses_samples(two_epoch_run: tuple[TrainConfig, Path], resumed_run: Path) -> None:
    cfg, _ = two_epoch_run
    before, after = _log(Path(cfg.out_dir)), _log(resumed_run)
    assert len(after) == len(before) + 1
    assert after[:2] == before  # epochs 0 and 1 are not recomputed
    assert after[2]["epoch"] == 2 and math.isfinite(after[2]["train_loss"])
    state = torch.load(resumed_run / "last.pt", map_location="cpu", weights_only=True)["state"]
    assert state["epoch"] == 3
    assert not _same_weights(_weights(resumed_run), _weights(Path(cfg.out_dir)))


def test_runs_are_deterministic(tmp_path: Path, tiny_data: Path, resumed_run: Path) -> None:
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other_seed"
    train(_config(tiny_data, first, epochs=3))
    train(_config(tiny_data, second, epochs=3))
    train(_config(tiny_data, other, epochs=3, seed=1))
    weights = _weights(first)
    assert _same_weights(weights, _weights(second))
    assert [e["train_loss"] for e in _log(first)] == [e["train_loss"] for e in _log(second)]
    # a run interrupted after 2 epochs and resumed ends exactly where an uninterrupted one does (the lr
    # schedule depends on cfg.epochs only after the warmup_epochs=2, so 2 + 1 epochs match 3)
    assert _same_weights(weights, _weights(resumed_run))
    assert not _same_weights(weights, _weights(other))


def test_training_loss_decreases(tmp_path: Path, tiny_data: Path) -> None:
    # Measured on this tiny set with lr 3e-2: last/first train loss 0.35-0.64 over seeds 0-11 (0.64 at seed 0).
    out = tmp_path / "run"
    train(_config(tiny_data, out, epochs=6, lr=3e-2))
    losses = [entry["train_loss"] for entry in _log(out)]
    assert len(losses) == 6 and all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]


def test_empty_validation_split_does_not_crash(tmp_path: Path, tiny_data: Path, tiny_sources: dict) -> None:
    val_ids = frozenset(r.material_id for r in split_by_material(load_records(tiny_data))["val"])
    data = _write_data(tmp_path / "data", tiny_sources, skip_ids=val_ids)
    out = tmp_path / "run"
    best = train(_config(data, out, epochs=1))
    (entry,) = _log(out)
    assert entry["val"] == {} and math.isfinite(entry["train_loss"])
    assert load_checkpoint(best).metadata["metrics"]["epoch"] == 0


# ---------------------------------------------------------------------------------------------------
# command line


def test_cli_trains(tmp_path: Path, tiny_data: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli_run"
    argv = ["--data-dir", str(tiny_data), "--out-dir", str(out), "--epochs", "1", "--batch-size", "4"]
    argv += ["--lr", "0.005", "--device", "cpu", "--model-json", json.dumps(TINY_MODEL)]
    assert main(argv) == 0
    assert str(out / "best.pt") in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["epochs"] == 1 and config["batch_size"] == 4 and config["lr"] == 0.005
    assert config["model"] == TINY_MODEL
    assert len(_log(out)) == 1
    assert load_checkpoint(out / "best.pt").model.config.scalar_dim == TINY_MODEL["scalar_dim"]


def test_cli_missing_data_dir(tmp_path: Path) -> None:
    missing, out = tmp_path / "no-such-data", tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="no-such-data") as info:
        main(["--data-dir", str(missing), "--out-dir", str(out), "--epochs", "1"])
    assert str(missing.resolve()) in str(info.value)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------------
# losses


def test_vrh_moduli_match_pymatgen() -> None:
    rng = np.random.default_rng(0)
    c0 = 100.0
    stiffnesses, logs = [], []
    for _ in range(4):
        a = rng.normal(size=(6, 6))
        voigt = 25.0 * a @ a.T + 30.0 * np.eye(6)  # positive definite, GPa
        stiffnesses.append(voigt)
        logs.append(symmetric_logm(mandel_from_full(voigt_to_full(voigt)) / c0, 1e-12))
    k, g = vrh_moduli(torch.from_numpy(np.stack(logs)), c0)
    assert k.dtype == torch.float64 and k.shape == g.shape == (4,)
    for i, voigt in enumerate(stiffnesses):
        reference = ElasticTensor.from_voigt(voigt)
        assert float(k[i]) == pytest.approx(reference.k_vrh, rel=1e-9)
        assert float(g[i]) == pytest.approx(reference.g_vrh, rel=1e-9)


def _sym(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x + x.transpose(-1, -2))


def _loss_case() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Outputs (consistent, as a model gives them) and a batch of 3 crystals whose targets equal the
    outputs wherever the mask is set."""
    gen = torch.Generator().manual_seed(0)
    n, dtype = 3, torch.float64
    piezo = torch.randn(n, 3, 3, 3, generator=gen, dtype=dtype)
    piezo_norm = piezo.flatten(1).norm(dim=-1)
    outputs = {
        "log_dielectric_electronic": _sym(torch.randn(n, 3, 3, generator=gen, dtype=dtype)),
        "log_dielectric_ionic": _sym(torch.randn(n, 3, 3, generator=gen, dtype=dtype)),
        "log_elastic": _sym(0.3 * torch.randn(n, 6, 6, generator=gen, dtype=dtype)),
        "piezoelectric": piezo,
        "log_piezoelectric_magnitude": piezo_norm.log(),
        "piezoelectric_direction": (piezo.flatten(1) / piezo_norm[:, None]).reshape(n, 3, 3, 3),
        "elastic": torch.zeros(n, 3, 3, 3, 3, dtype=dtype),
    }
    k, g = vrh_moduli(outputs["log_elastic"], 100.0)
    batch = {
        key: outputs[key].clone()
        for key in ("log_dielectric_electronic", "log_dielectric_ionic", "log_elastic", "piezoelectric")
    }
    batch |= {"k_vrh": k.clone(), "g_vrh": g.clone()}
    masks = {
        "log_dielectric_electronic": [True, False, False],
        "log_dielectric_ionic": [True, False, False],
        "piezoelectric": [False, True, False],
        "log_elastic": [False, False, True],
        "k_vrh": [False, True, True],
    }
    batch |= {f"mask_{key}": torch.tensor(mask) for key, mask in masks.items()}
    return outputs, batch


ZERO = 1e-20  # the piezo term compares a norm and a direction recomputed from the target: rounding only


def test_multitask_loss_zero_positive_and_masked() -> None:
    outputs, batch = _loss_case()
    total, terms = multitask_loss(outputs, batch, 100.0)
    assert set(terms) == {"dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic", "kg"}
    assert abs(float(total)) < ZERO and all(abs(value) < ZERO for value in terms.values())

    # a wrong target where the mask is set makes its own term (and the total) positive
    wrong = {
        "log_dielectric_electronic": ("dielectric_electronic", 0),
        "log_dielectric_ionic": ("dielectric_ionic", 0),
        "piezoelectric": ("piezoelectric", 1),
        "log_elastic": ("elastic", 2),
        "k_vrh": ("kg", 1),
        "g_vrh": ("kg", 2),
    }
    for key, (term, row) in wrong.items():
        changed = {**batch, key: batch[key].clone()}
        changed[key][row] += 0.5 if key not in ("k_vrh", "g_vrh") else 10.0
        total, terms = multitask_loss(outputs, changed, 100.0)
        assert terms[term] > 1e-3 and float(total) > 1e-3, key
        assert all(abs(value) < ZERO for name, value in terms.items() if name != term), key

    # wrong targets where the mask is not set are ignored
    changed = {key: value.clone() for key, value in batch.items()}
    changed["log_dielectric_electronic"][1:] += 5.0
    changed["log_dielectric_ionic"][1:] += 5.0
    changed["piezoelectric"][[0, 2]] += 5.0
    changed["log_elastic"][:2] += 5.0
    changed["k_vrh"][0] = changed["g_vrh"][0] = 1e4
    total, terms = multitask_loss(outputs, changed, 100.0)
    assert len(terms) == 5
    assert abs(float(total)) < ZERO and all(abs(value) < ZERO for value in terms.values())

    # a target missing from every crystal has no term; weights scale the total
    changed = {**batch, "mask_piezoelectric": torch.zeros(3, dtype=torch.bool)}
    changed["log_elastic"] = batch["log_elastic"] + 0.1
    changed["k_vrh"] = batch["k_vrh"] * 1.5
    changed["log_dielectric_electronic"] = batch["log_dielectric_electronic"] + 0.2
    total, terms = multitask_loss(outputs, changed, 100.0, {"elastic": 3.0})
    assert "piezoelectric" not in terms and len(terms) == 4
    expected = sum({**DEFAULT_WEIGHTS, "elastic": 3.0}[name] * value for name, value in terms.items())
    assert float(total) == pytest.approx(expected, rel=1e-12)
    # mean squared log-space errors, and squared log errors of K and G
    assert terms["elastic"] == pytest.approx(0.1**2, rel=1e-9)
    assert terms["dielectric_electronic"] == pytest.approx(0.2**2, rel=1e-9)
    assert terms["kg"] == pytest.approx(math.log(1.5) ** 2, rel=1e-9)


class _Planted:
    """Unpickling this creates a marker file: the proof that a cache loader ran foreign code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return Path.touch, (self.marker,)


def test_sample_cache_round_trips_plain_data(two_epoch_run: tuple[TrainConfig, Path], tmp_path: Path) -> None:
    cfg, _ = two_epoch_run
    splits, extra = load_samples(Path(cfg.out_dir) / "samples.pt", key=None)
    save_samples(tmp_path / "copy.pt", "k1", splits, extra)
    assert load_samples(tmp_path / "copy.pt", "another key") is None  # stale settings: rebuilt
    again, extra_again = load_samples(tmp_path / "copy.pt", "k1")
    assert extra_again == extra and set(again) == set(splits)
    for name in splits:
        for a, b in zip(splits[name], again[name], strict=True):
            assert (a.material_id, a.source) == (b.material_id, b.source) and a.targets.keys() == b.targets.keys()
            for field in ("numbers", "edge_index", "edge_vec", "operations"):
                np.testing.assert_array_equal(getattr(a.graph, field), getattr(b.graph, field))
            for key in a.targets:
                np.testing.assert_array_equal(a.targets[key], b.targets[key])


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_planted_pickle_in_the_cache_is_ignored_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    marker = tmp_path / "pwned"
    cache = tmp_path / "run" / "samples.pt"
    cache.parent.mkdir()
    payload = {"format": "gmt_ase.samples/1", "key": None, "extra": {}, "splits": {"train": [_Planted(marker)]}}
    if writer == "pickle":
        cache.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, cache)
    assert load_samples(cache, key=None) is None and not marker.exists()
    # training rebuilds the samples instead (and overwrites the planted file with plain data)
    built = ({"train": [], "val": [], "test": []}, "hash", [1, 8])
    monkeypatch.setattr(prepare_module, "prepare_samples", lambda cfg, model_cfg: built)
    cfg = _config(tmp_path, tmp_path / "run")
    assert prepare_module.cached_samples(cfg, ModelConfig(), cache) == built
    assert not marker.exists()
    assert load_samples(cache, key=None) == (built[0], {"data_hash": "hash", "species": [1, 8]})


def test_every_parameter_gets_a_gradient(two_epoch_run: tuple[TrainConfig, Path]) -> None:
    """One training batch of every source reaches every weight of the network (all heads included)."""
    cfg, best = two_epoch_run
    samples, _ = load_samples(Path(cfg.out_dir) / "samples.pt", key=None)  # this run's own cache file
    by_source: dict[str, Sample] = {}
    for sample in samples["train"]:
        by_source.setdefault(sample.source, sample)
    assert set(by_source) == set(SOURCE_FILES)
    batch = collate_samples(list(by_source.values()))
    model = load_checkpoint(best).model.train()
    loss, terms = multitask_loss(model(batch), batch, model.config.elastic_scale)
    assert set(terms) == {"dielectric_electronic", "dielectric_ionic", "piezoelectric", "elastic", "kg"}
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_stochastic_weight_averaging_exports_the_mean_of_the_last_epochs(tmp_path: Path, tiny_data: Path) -> None:
    cfg = _config(tiny_data, tmp_path / "swa", epochs=3, swa_epochs=2, ema_decay=0.0)
    snapshots = []
    original = train_module.train_epoch

    def recording(trainable, *args, **kwargs):
        loss = original(trainable, *args, **kwargs)
        snapshots.append({k: v.detach().clone() for k, v in trainable.state_dict().items()})
        return loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "train_epoch", recording)
        train(cfg)
    averaged = load_checkpoint(tmp_path / "swa" / "swa.pt").model.state_dict()
    for key, value in averaged.items():
        if value.is_floating_point():
            expected = 0.5 * (snapshots[1][key] + snapshots[2][key])  # epochs 1 and 2, not epoch 0
            assert torch.allclose(value, expected, atol=1e-6), key
    assert _log(tmp_path / "swa")[-1]["epoch"] == "swa of 2 epochs"


def test_update_ema_is_the_exponential_moving_average() -> None:
    torch.manual_seed(0)
    config = ModelConfig.from_dict({**ModelConfig().to_dict(), **TINY_MODEL})
    model, ema = GMTNet(config), GMTNet(config)
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    averaging.update_ema(ema, model, decay=0.75)
    for (name, value), raw in zip(ema.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * raw, msg=name)


def test_moving_average_and_element_features_are_exported_and_resumed(tmp_path: Path, tiny_data: Path) -> None:
    settings = {"ema_decay": 0.9, "element_features": True}
    one, resumed, straight = tmp_path / "one", tmp_path / "resumed", tmp_path / "straight"
    train(_config(tiny_data, one, epochs=1, **settings))
    last = torch.load(one / "last.pt", map_location="cpu", weights_only=True)
    assert not _same_weights(last["ema"], last["model"])  # the average lags the raw weights
    # the exported model is the moving average, and it carries the element table
    best = load_checkpoint(one / "best.pt").model
    assert _same_weights(best.state_dict(), last["ema"])
    assert best.config.element_features == len(ELEMENT_FEATURE_NAMES)
    expected_table = torch.as_tensor(element_feature_table(best.config.num_species), dtype=torch.float32)
    assert torch.equal(best.element_table, expected_table)
    # resuming restores the average: 1 + 1 epochs end where 2 uninterrupted epochs do
    shutil.copytree(one, resumed)
    train(_config(tiny_data, resumed, epochs=2, **settings))
    train(_config(tiny_data, straight, epochs=2, **settings))
    after, reference = (torch.load(p / "last.pt", map_location="cpu", weights_only=True) for p in (resumed, straight))
    assert _same_weights(after["ema"], reference["ema"]) and _same_weights(after["model"], reference["model"])


def test_cli_boolean_flags(tmp_path: Path, tiny_data: Path) -> None:
    out = tmp_path / "cli"
    args = ["--data-dir", str(tiny_data), "--out", str(out), "--epochs", "1", "--batch-size", "4",
            "--model-json", json.dumps(TINY_MODEL), "--element-features", "--ema-decay", "0.5"]
    assert main(args) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["element_features"] is True and saved["ema_decay"] == 0.5


def test_moving_average_copy_has_exactly_the_model_state_keys() -> None:
    """With the shipped architecture a deep copy adds e3nn's compiled constants to the state dict (143 vs
    123 entries) and the exported checkpoint no longer loads; the moving average must not."""
    model = GMTNet(ModelConfig())
    ema = averaging.moving_average_copy(model, torch.device("cpu"))
    assert ema.state_dict().keys() == model.state_dict().keys()
    assert _same_weights(ema.state_dict(), model.state_dict())
    assert not any(p.requires_grad for p in ema.parameters())


def test_every_train_option_has_help_text() -> None:
    import argparse

    from gmt_ase.training.train import add_parser

    parser = argparse.ArgumentParser()
    train = add_parser(parser.add_subparsers())
    missing = [a.option_strings for a in train._actions if a.option_strings and not a.help]
    assert not missing, f"train options without help: {missing}"
