"""``gmt-ase`` through its entry point: the model card of ``info``, the load message and the progress bar,
Ctrl-C, inputs that can never succeed, folder scans, clear read errors, ``-o name/`` and ``evaluate`` without
the data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ase.io
import pytest

from gmt_ase.cli import main
from gmt_ase.cli._card import BASELINE_TEST

ROOT = Path(__file__).resolve().parents[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def predict(paths: list[Path], output: Path | None, model: str, *extra: str) -> int:
    args = ["predict", *map(str, paths), "--model", model, "--device", "cpu", *extra]
    return main(args + (["-o", str(output)] if output else []))


def forbid_model_loading(monkeypatch) -> None:
    from gmt_ase.inference.cache import clear_predictor_cache
    from gmt_ase.nn.model import GMTNet

    clear_predictor_cache()
    monkeypatch.setattr(GMTNet, "__init__", lambda self, config: pytest.fail("the network was built"))


def test_info_shows_the_release_card_without_training_paths(capsys):
    assert main(["info", "--model", "default"]) == 0
    text = capsys.readouterr().out
    card = json.loads((ROOT / "gmt_ase" / "models" / "default.json").read_text())
    assert f"version {card['version']}" in text and card["data"][:40] in text
    assert "Test split" in text and "EwT25" in text and "dielectric_electronic" in text
    assert "composition baseline" in text and "11.79 / 11.91" in text  # baseline K beside the model's
    assert "Limits:" in text and "5000 atoms" in text and card["limits"][0][:60] in text
    for secret in ("runs/", "best.pt", "val_loss", "out_dir", "time_limit_minutes"):
        assert secret not in text
    assert main(["info", "--model", "default", "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["version"] == card["version"] and as_json["test_metrics"] == card["test_metrics"]
    assert "runs/" not in json.dumps(as_json) and "training" not in as_json


def test_info_of_a_checkpoint_file_says_it_has_no_test_metrics(tiny_model, capsys, monkeypatch):
    forbid_model_loading(monkeypatch)
    assert main(["info", "--model", tiny_model]) == 0
    text = capsys.readouterr().out
    assert "'test-tiny'" in text and "Test metrics: none recorded" in text and "94 elements, H-Pu" in text


def test_the_baseline_in_the_card_is_the_measured_one():
    results = ROOT / "benchmarks" / "results" / "baseline_descriptors.json"
    measured = json.loads(results.read_text())["baseline"]["test"]
    for key, values in BASELINE_TEST.items():
        assert values["full_tensors"] == round(measured[key]["mae_full_tensors"], 2)
        assert values["binaries"] == round(measured[key]["mae_binaries"], 2)


def test_the_model_loads_before_the_progress_bar_starts(tmp_path, silicon, rutile, tiny_model, monkeypatch, capsys):
    from gmt_ase.inference.cache import clear_predictor_cache

    ase.io.write(tmp_path / "Si.cif", silicon)
    ase.io.write(tmp_path / "rutile.cif", rutile)
    clear_predictor_cache()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert predict([tmp_path / "Si.cif", tmp_path / "rutile.cif"], tmp_path / "out.jsonl", tiny_model) == 0
    err = capsys.readouterr().err
    loading, loaded = err.index("gmt-ase: loading model 'test-tiny'"), err.index("gmt-ase: model loaded in")
    assert "typically" in err[loading:loaded]
    assert "structure" not in err[: err.index("\n", loaded)]  # no bar before or within the load messages
    assert "2/2" in err[loaded:]


def test_ctrl_c_while_the_model_loads_exits_cleanly(tmp_path, silicon, tiny_model, monkeypatch, capsys):
    import gmt_ase.inference.cache as cache

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    ase.io.write(tmp_path / "Si.cif", silicon)
    monkeypatch.setattr(cache, "load_predictor", interrupted)
    assert predict([tmp_path / "Si.cif"], tmp_path / "out.jsonl", tiny_model) == 130
    err = capsys.readouterr().err
    assert "interrupted (Ctrl-C)" in err and "rerun the same command" in err and "Traceback" not in err


@pytest.fixture
def hopeless(tmp_path, silicon) -> Path:
    """A folder with a good CIF, an empty CIF, a CIF with an unknown element symbol and a POSCAR with one."""
    folder = tmp_path / "hopeless"
    folder.mkdir()
    ase.io.write(folder / "Si.cif", silicon)
    (folder / "empty.cif").write_text("")
    cif = (folder / "Si.cif").read_text()
    (folder / "xx.cif").write_text(cif.replace("  Si  Si", "  xx  xx"))
    ase.io.write(folder / "POSCAR_xx", silicon, format="vasp")
    (folder / "POSCAR_xx").write_text((folder / "POSCAR_xx").read_text().replace("Si", "Xx"))
    return folder


def test_clear_errors_for_unknown_elements_and_corrupt_cifs(hopeless, tmp_path, tiny_model):
    out = tmp_path / "out.jsonl"
    assert predict([hopeless], out, tiny_model, "-q") == 0
    errors = {Path(r["path"]).name: r["error"] for r in read_jsonl(out) if not r["ok"]}
    assert "unknown element symbol 'Xx'" in errors["POSCAR_xx"]
    assert "not a valid CIF" in errors["xx.cif"] and "unknown element symbol" in errors["xx.cif"]
    assert "contains no structures" in errors["empty.cif"]
    assert "NoneType" not in errors["xx.cif"].split("ASE's reader raised")[0]


def test_inputs_that_cannot_succeed_are_not_retried_until_they_change(
    hopeless, tmp_path, tiny_model, silicon, monkeypatch, capsys
):
    out = tmp_path / "out.csv"
    assert predict([hopeless], out, tiny_model, "-q") == 0
    capsys.readouterr()
    with monkeypatch.context() as patch:
        forbid_model_loading(patch)
        assert predict([hopeless], out, tiny_model) == 0  # nothing to load the model for
    err = capsys.readouterr().err
    assert "0 predicted, 3 errors, 1 skipped" in err and "3 not retried" in err
    assert len(out.read_text().splitlines()) == 5  # header + 4 rows, nothing appended
    ase.io.write(hopeless / "empty.cif", silicon)  # the user fixes one file: it is retried
    assert predict([hopeless], out, tiny_model) == 0
    err = capsys.readouterr().err
    assert "1 predicted, 2 errors, 1 skipped" in err and "1 retried (1 now ok)" in err and "2 not retried" in err


def test_a_folder_scan_reads_traj_and_json_and_says_what_it_skipped(tmp_path, silicon, rutile, tiny_model, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    ase.io.write(folder / "a.traj", [silicon, rutile])
    ase.io.write(folder / "b.json", rutile)
    (folder / "notes.txt").write_text("not a structure")
    (folder / "plot.png").write_bytes(b"\x89PNG")
    out = tmp_path / "out.jsonl"
    assert predict([folder], out, tiny_model) == 0
    assert [Path(r["source"]).name for r in read_jsonl(out)] == ["a.traj@0", "a.traj@1", "b.json@0"]
    assert all(r["ok"] for r in read_jsonl(out))
    assert "skipped 2 file(s) that are not structure files (1 .png, 1 .txt)" in capsys.readouterr().err


def test_an_output_name_ending_in_a_slash_is_an_error(tmp_path, silicon, tiny_model, capsys):
    ase.io.write(tmp_path / "Si.cif", silicon)
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(tmp_path / "Si.cif"), "--model", tiny_model, "-o", f"{tmp_path}/results.csv/"])
    assert exit_info.value.code == 2
    assert "ends with a slash" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def test_evaluate_without_the_data_says_so_before_loading_the_model(tmp_path, tiny_model, monkeypatch, capsys):
    forbid_model_loading(monkeypatch)
    monkeypatch.chdir(tmp_path)  # outside the repository: no data/ folder
    assert main(["evaluate", "--model", tiny_model, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "not shipped with the installed package" in err and "--data-dir" in err and "Traceback" not in err


def test_a_csv_of_the_older_layout_is_resumed_in_its_own_layout(tmp_path, silicon, rutile, tiny_model, capsys):
    import csv

    from gmt_ase.cli._io import LATER_COLUMNS

    ase.io.write(tmp_path / "Si.cif", silicon)
    out = tmp_path / "out.csv"
    assert predict([tmp_path / "Si.cif"], out, tiny_model, "-q") == 0
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    old = [column for column in rows[0] if column not in LATER_COLUMNS]
    with out.open("w", newline="") as handle:  # as written before the two columns existed
        writer = csv.DictWriter(handle, fieldnames=old, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    ase.io.write(tmp_path / "rutile.cif", rutile)
    assert predict([tmp_path / "Si.cif", tmp_path / "rutile.cif"], out, tiny_model) == 0
    assert "1 predicted, 0 errors, 1 skipped" in capsys.readouterr().err
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == old and len(list(reader)) == 2
