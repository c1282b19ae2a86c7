"""``python -m gmt_ase.evaluation.release``: never writes into the installed package unless told to (--install)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gmt_ase.evaluation.release as release

METRICS = Path(__file__).resolve().parents[1] / "benchmarks" / "model_report" / "metrics.json"


@pytest.fixture
def package_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in for the package's models folder, so no test can write into the real one."""
    folder = tmp_path / "package_models"
    monkeypatch.setattr(release, "PACKAGE_MODELS", folder)
    return folder


def _ship(tiny_model: str, *extra: str) -> int:
    return release.main([tiny_model, "--metrics", str(METRICS), "--name", "demo", *extra])


def test_release_without_a_destination_is_refused(tiny_model, package_models, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _ship(tiny_model)
    assert exit_info.value.code == 2 and "--out-dir" in capsys.readouterr().err
    assert not package_models.exists()


def test_release_writes_where_asked(tiny_model, package_models, tmp_path):
    out = tmp_path / "shipped"
    assert _ship(tiny_model, "--out-dir", str(out)) == 0
    card = json.loads((out / "demo.json").read_text())
    assert card["file"] == "demo.pt" and (out / "demo.pt").is_file() and (out / "demo.md").is_file()
    assert not package_models.exists()


def test_release_install_writes_into_the_package(tiny_model, package_models):
    assert _ship(tiny_model, "--install") == 0
    assert sorted(p.name for p in package_models.iterdir()) == ["demo.json", "demo.md", "demo.pt"]


def test_out_dir_and_install_exclude_each_other(tiny_model, package_models, tmp_path):
    with pytest.raises(SystemExit):
        _ship(tiny_model, "--install", "--out-dir", str(tmp_path))


def test_package_models_is_the_shipped_models_folder():
    assert (release.PACKAGE_MODELS / "default.json").is_file()
