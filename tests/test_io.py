"""Checkpoints (:mod:`gmt_ase.inference.io`): exact round trip, recorded checksum and refusal of anything suspicious."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ase.build import bulk

from gmt_ase.graph.crystal_graph import build_graph, collate
from gmt_ase.inference import io as gmt_io
from gmt_ase.inference.io import (
    FORMAT_VERSION,
    CheckpointError,
    LoadedCheckpoint,
    file_sha256,
    load_checkpoint,
    make_test_checkpoint,
    save_checkpoint,
)
from gmt_ase.inference.predictor import TensorPredictor
from gmt_ase.nn.model import OUTPUT_KEYS, GMTNet

MARKER_NAME = "arbitrary-code-ran"


def _touch_marker(path: str) -> None:
    Path(path).write_text("pickle executed code")


class Malicious:
    """An object whose unpickling would create a marker file (it must never be unpickled)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return _touch_marker, (str(self.marker),)


@pytest.fixture(scope="module")
def tiny_path(tiny_model: str) -> Path:
    return Path(tiny_model)


@pytest.fixture(scope="module")
def loaded(tiny_path: Path) -> LoadedCheckpoint:
    return load_checkpoint(tiny_path)


@pytest.fixture(scope="module")
def payload(tiny_path: Path) -> dict:
    return torch.load(tiny_path, weights_only=True)


def write_payload(path: Path, payload: dict, **changes: object) -> Path:
    torch.save({**payload, **changes}, path)
    return path


def outputs(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    atoms = bulk("NaCl", "rocksalt", a=5.64) * (1, 1, 2)
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    graph = build_graph(atoms.numbers, atoms.positions, atoms.cell[:], np.eye(3)[None], model.config.cutoff)
    with torch.no_grad():
        return model(collate([graph]))


# --------------------------------------------------------------------------------------------------
# round trip and metadata
# --------------------------------------------------------------------------------------------------
def test_round_trip_gives_identical_outputs(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    path = tmp_path / "copy.pt"
    metadata = {"name": "copy", "species": [11, 17], "metrics": {"a": 1.0}}
    sha = save_checkpoint(path, loaded.model, metadata=metadata)
    again = load_checkpoint(path)
    before, after = outputs(loaded.model), outputs(again.model)
    for key in OUTPUT_KEYS:
        assert torch.equal(before[key], after[key]), key
    assert again.sha256 == sha == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert again.metadata["name"] == "copy"
    assert again.metadata["metrics"] == {"a": 1.0}
    assert again.species == frozenset({11, 17})
    assert again.cutoff == loaded.model.config.cutoff
    assert again.metadata["format_version"] == FORMAT_VERSION
    assert set(again.metadata["library_versions"]) >= {"torch", "e3nn", "gmt_ase"}
    assert "state_dict" not in again.metadata
    assert not again.model.training
    assert not path.with_suffix(".pt.tmp").exists()  # atomic write leaves no temporary file


def test_predictor_card_records_sha(loaded: LoadedCheckpoint, tiny_path: Path) -> None:
    assert loaded.sha256 == file_sha256(tiny_path) and loaded.path == tiny_path
    predictor = TensorPredictor(loaded.model, loaded.metadata, loaded.sha256, device="cpu")
    assert predictor.card["sha256"] == file_sha256(tiny_path)
    assert predictor.card["name"] == "test-tiny"
    assert predictor.cutoff == 5.0 and predictor.species == frozenset(range(1, 95))


def test_save_requires_species(loaded: LoadedCheckpoint, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="species"):
        save_checkpoint(tmp_path / "x.pt", loaded.model, metadata={"name": "x"})


def test_make_test_checkpoint_is_deterministic(tiny_path: Path, payload: dict) -> None:
    state = torch.random.get_rng_state()
    second = torch.load(make_test_checkpoint(tiny_path.with_name("again.pt"), seed=0), weights_only=True)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is left alone
    for key, value in payload["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key


# --------------------------------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(str(tmp_path) + "/")


@pytest.mark.parametrize("kind", ["empty", "truncated", "random bytes", "json"])
def test_unreadable_files(tiny_path: Path, tmp_path: Path, kind: str) -> None:
    data = tiny_path.read_bytes()
    content = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "random bytes": np.random.default_rng(0).bytes(4096),
        "json": json.dumps({"format": "gmt_ase-checkpoint"}).encode(),
    }[kind]
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable gmt_ase checkpoint"):
        load_checkpoint(path)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="not a gmt_ase checkpoint"):
        load_checkpoint(path)
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError, match="not a gmt_ase checkpoint"):
        load_checkpoint(path)


def test_missing_entries(payload: dict, tmp_path: Path) -> None:
    broken = {k: v for k, v in payload.items() if k != "species"}
    path = write_payload(tmp_path / "x.pt", broken)
    with pytest.raises(CheckpointError, match="missing checkpoint entries.*species"):
        load_checkpoint(path)


def test_newer_format_version(payload: dict, tmp_path: Path) -> None:
    path = write_payload(tmp_path / "new.pt", payload, format_version=FORMAT_VERSION + 1)
    with pytest.raises(CheckpointError, match=f"format version {FORMAT_VERSION + 1}"):
        load_checkpoint(path)


def test_wrong_target_list(payload: dict, tmp_path: Path) -> None:
    path = write_payload(tmp_path / "targets.pt", payload, targets=["elastic", "dielectric_electronic"])
    with pytest.raises(CheckpointError, match="predicts"):
        load_checkpoint(path)


def test_cutoff_disagreeing_with_config(payload: dict, tmp_path: Path) -> None:
    path = write_payload(tmp_path / "cutoff.pt", payload, cutoff=6.0)
    with pytest.raises(CheckpointError, match="cutoff"):
        load_checkpoint(path)


def test_state_dict_not_matching_config(payload: dict, tmp_path: Path) -> None:
    config = dict(payload["config"], scalar_dim=8)  # every scalar weight now has the wrong shape
    path = write_payload(tmp_path / "shapes.pt", payload, config=config)
    with pytest.raises(CheckpointError, match="do not match the recorded model configuration"):
        load_checkpoint(path)


def test_missing_and_unknown_weights(payload: dict, tmp_path: Path) -> None:
    state = dict(payload["state_dict"], extra=torch.zeros(2))
    state.pop(next(iter(payload["state_dict"])))
    path = write_payload(tmp_path / "missing.pt", payload, state_dict=state)
    with pytest.raises(CheckpointError, match="(?s)Missing key.*Unexpected key"):  # strict loading
        load_checkpoint(path)


def test_unknown_config_key(payload: dict, tmp_path: Path) -> None:
    path = write_payload(tmp_path / "config.pt", payload, config=dict(payload["config"], new_option=1))
    with pytest.raises(CheckpointError, match="new_option"):
        load_checkpoint(path)


def test_pickled_object_is_refused_without_running_it(payload: dict, tmp_path: Path) -> None:
    marker = tmp_path / MARKER_NAME
    path = write_payload(tmp_path / "evil.pt", payload, metrics={"note": Malicious(marker)})
    with pytest.raises(CheckpointError, match="not a readable gmt_ase checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the test object is real: unrestricted loading runs it
    assert marker.exists()


# --------------------------------------------------------------------------------------------------
# shipped models (a fake package directory)
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_models(tmp_path: Path, tiny_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "good.pt").write_bytes(tiny_path.read_bytes())
    (folder / "bad.pt").write_bytes(tiny_path.read_bytes())
    (folder / "good.json").write_text(json.dumps({"file": "good.pt", "sha256": file_sha256(tiny_path)}))
    (folder / "bad.json").write_text(json.dumps({"file": "bad.pt", "sha256": "0" * 64}))
    monkeypatch.setattr(gmt_io, "resources", SimpleNamespace(files=lambda package: folder))
    return folder


def test_shipped_model_checksum_mismatch(fake_models: Path) -> None:
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint("bad")


def test_shipped_model_resolves_and_verifies(fake_models: Path) -> None:
    path, sha = gmt_io.resolve_model_path("good")
    assert path == fake_models / "good.pt" and sha == file_sha256(path)


def test_unknown_shipped_model_lists_available(fake_models: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no shipped model named 'other'.*\['bad', 'good'\]"):
        load_checkpoint("other")


def test_ensemble_round_trip_predicts_the_mean_of_its_members(tmp_path: Path) -> None:
    from gmt_ase.evaluation.release import combine_checkpoints
    from gmt_ase.nn.model import combine_odd_tensors

    members = [make_test_checkpoint(tmp_path / f"m{seed}.pt", seed=seed) for seed in (0, 1)]
    combine_checkpoints(members, tmp_path / "ensemble.pt")
    ensemble = load_checkpoint(tmp_path / "ensemble.pt")
    assert ensemble.metadata["ensemble_size"] == 2
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    graph = build_graph(atoms.numbers, atoms.positions, atoms.cell[:], np.eye(3)[None], 5.0)
    batch = collate([graph])
    with torch.no_grad():
        mean = ensemble.model(batch)
        singles = [load_checkpoint(path).model(batch) for path in members]
    for key in ("dielectric_electronic", "elastic"):
        torch.testing.assert_close(mean[key], 0.5 * (singles[0][key] + singles[1][key]))
    piezo = torch.stack([single["piezoelectric"] for single in singles])  # combined without shrinking
    torch.testing.assert_close(mean["piezoelectric"], combine_odd_tensors(piezo))
    assert not torch.allclose(singles[0]["elastic"], singles[1]["elastic"])  # members really differ


def test_ensemble_members_must_share_a_configuration(tmp_path: Path) -> None:
    from gmt_ase.evaluation.release import combine_checkpoints
    from gmt_ase.nn.model import GMTNet, ModelConfig

    other = tmp_path / "other.pt"
    save_checkpoint(other, GMTNet(ModelConfig(scalar_dim=8)), metadata={"species": [1, 8]})
    with pytest.raises(ValueError, match="share one model configuration"):
        combine_checkpoints([make_test_checkpoint(tmp_path / "a.pt"), other], tmp_path / "bad.pt")


def test_ensemble_of_members_with_and_without_element_features(tmp_path: Path) -> None:
    """A member trained without the element table joins with a zero projection: its outputs are unchanged."""
    from dataclasses import replace

    from gmt_ase.evaluation.release import combine_checkpoints
    from gmt_ase.nn.model import GMTNet
    from gmt_ase.training.element_features import ELEMENT_FEATURE_NAMES, fill_element_table

    plain_path = make_test_checkpoint(tmp_path / "plain.pt", seed=0)
    plain = load_checkpoint(plain_path).model
    torch.manual_seed(3)
    with_table = fill_element_table(GMTNet(replace(plain.config, element_features=len(ELEMENT_FEATURE_NAMES))))
    table_path = tmp_path / "table.pt"
    save_checkpoint(table_path, with_table, metadata={"species": range(1, 95)})
    combine_checkpoints([plain_path, table_path], tmp_path / "mixed.pt")
    mixed = load_checkpoint(tmp_path / "mixed.pt").model
    assert all(member.config.element_features == len(ELEMENT_FEATURE_NAMES) for member in mixed.members)
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.2)
    batch = collate([build_graph(atoms.numbers, atoms.positions, atoms.cell[:], np.eye(3)[None], 5.0)])
    with torch.no_grad():
        for key in ("dielectric_electronic", "piezoelectric", "elastic"):
            torch.testing.assert_close(mixed.members[0](batch)[key], plain(batch)[key], rtol=0, atol=0)
            torch.testing.assert_close(mixed.members[1](batch)[key], with_table.eval()(batch)[key], rtol=0, atol=0)


def test_model_card_records_checksum_version_and_refuses_broken_checkpoints(tmp_path: Path) -> None:
    import json

    from gmt_ase.evaluation.release import write_model_card

    metrics = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/model_report/metrics.json").read_text())
    source = make_test_checkpoint(tmp_path / "trained.pt")
    card_path = write_model_card(source, metrics, tmp_path / "models", "demo", ["a note"], version="7")
    card = json.loads(card_path.read_text())
    assert card["version"] == "7" and card["notes"] == ["a note"]
    assert card["sha256"] == file_sha256(tmp_path / "models" / "demo.pt")
    assert load_checkpoint(tmp_path / "models" / "demo.pt").metadata["version"] == "7"  # card and file agree
    markdown = (tmp_path / "models" / "demo.md").read_text()
    assert "- version 7, released" in markdown and card["sha256"] in markdown and "- a note" in markdown
    broken = tmp_path / "broken.pt"
    broken.write_bytes(source.read_bytes()[:1000])
    with pytest.raises(CheckpointError):
        write_model_card(broken, metrics, tmp_path / "models", "broken")
    assert not (tmp_path / "models" / "broken.pt").exists()


# --------------------------------------------------------------------------------------------------
# start-up cost and name resolution (issue 11)
# --------------------------------------------------------------------------------------------------
def test_ensemble_members_are_cheap_independent_copies(loaded: LoadedCheckpoint) -> None:
    from gmt_ase.nn.model import GMTEnsemble

    built: list[int] = []
    original = GMTNet.__init__

    def counting(self, config):
        built.append(1)
        original(self, config)

    try:
        GMTNet.__init__ = counting
        ensemble = GMTEnsemble(loaded.model.config, 3)
    finally:
        GMTNet.__init__ = original
    assert len(built) == 1  # e3nn's code is generated once; the other members are clones
    pointers = [{p.data_ptr() for p in member.parameters()} for member in ensemble.members]
    assert not (pointers[0] & pointers[1]) and not (pointers[1] & pointers[2])
    ensemble.members[1].load_state_dict(loaded.model.state_dict())
    with torch.no_grad():
        ensemble.members[0].embedding.weight.add_(1.0)  # changing one member leaves the others alone
        got, want = outputs(ensemble.members[1].eval()), outputs(loaded.model)
    for key in OUTPUT_KEYS:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)


def test_loading_a_checkpoint_does_not_copy_the_network(tiny_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gmt_ase.inference.predictor

    def refuse(*args, **kwargs):
        raise AssertionError("deepcopy while loading")

    monkeypatch.setattr(gmt_ase.inference.predictor, "copy", SimpleNamespace(deepcopy=refuse))
    predictor = TensorPredictor.from_checkpoint(str(tiny_path), device="cpu")
    assert predictor.card["name"] == "test-tiny"


def test_metadata_is_read_without_building_the_network(tiny_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self, config):
        raise AssertionError("network built")

    monkeypatch.setattr(GMTNet, "__init__", refuse)
    metadata, sha = gmt_io.read_checkpoint_metadata(str(tiny_path))
    assert sha == file_sha256(tiny_path) and metadata["name"] == "test-tiny" and "state_dict" not in metadata
    assert gmt_io.checkpoint_card(metadata, sha)["sha256"] == sha


def test_a_file_named_like_a_shipped_model_does_not_shadow_it(
    fake_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good").write_text("not a checkpoint")
    path, sha = gmt_io.resolve_model_path("good")
    assert path == fake_models / "good.pt" and sha is not None
    assert gmt_io.resolve_model_path("./good") == (Path("./good"), None)  # explicit path: the file
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint("./good")
    (tmp_path / "mine").write_text("x")
    with pytest.raises(CheckpointError, match=r"no shipped model named 'mine'.*write ./mine"):
        load_checkpoint("mine")


def test_shipped_model_reports_its_release_version(fake_models: Path, tiny_path: Path) -> None:
    card = json.loads((fake_models / "good.json").read_text())
    (fake_models / "good.json").write_text(json.dumps({**card, "name": "good", "version": "7"}))
    assert load_checkpoint("good").metadata["version"] == "7"
    assert gmt_io.read_checkpoint_metadata("good")[0]["version"] == "7"
    assert load_checkpoint(str(tiny_path)).metadata["version"] == "0"  # a file by path: its own metadata


def test_release_without_a_version_keeps_the_checkpoint_byte_for_byte(tmp_path: Path) -> None:
    from gmt_ase.evaluation.release import write_model_card

    metrics = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/model_report/metrics.json").read_text())
    source = make_test_checkpoint(tmp_path / "trained.pt")
    card = json.loads(write_model_card(source, metrics, tmp_path / "models", "demo").read_text())
    assert card["version"] == "0" and card["sha256"] == file_sha256(source)


SHIPPED = gmt_io.shipped_model_names()


def test_only_model_cards_name_shipped_models(fake_models: Path) -> None:
    (fake_models / "stats.json").write_text(json.dumps({"k_vrh": [1, 2]}))
    assert gmt_io.shipped_model_names() == ["bad", "good"]
    with pytest.raises(CheckpointError, match="no shipped model named 'stats'"):
        load_checkpoint("stats")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_reports_the_version_of_its_card(name: str, capsys: pytest.CaptureFixture) -> None:
    from gmt_ase.cli import main

    card = json.loads((Path(str(resources.files("gmt_ase.models"))) / f"{name}.json").read_text())
    metadata, sha = gmt_io.read_checkpoint_metadata(name)
    assert sha == card["sha256"] and metadata["version"] == str(card["version"]) and metadata["name"] == name
    assert main(["info", "--model", name, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["name"], info["version"]) == (name, str(card["version"]))
    markdown = (Path(str(resources.files("gmt_ase.models"))) / f"{name}.md").read_text()
    assert f"- version {card['version']}," in markdown
