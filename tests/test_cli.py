"""The ``gmt-ase`` command line (predict, resume, csv/jsonl, info) and the example scripts."""

from __future__ import annotations

import csv
import json
import runpy
import sys
from importlib.metadata import entry_points
from pathlib import Path

import ase.io
import numpy as np
import pytest

from gmt_ase.cli import build_parser, main
from gmt_ase.cli._io import csv_columns
from gmt_ase.inference.predictor import TensorPredictor

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def folder(tmp_path, silicon, rutile, nacl, alpha_quartz, wurtzite_zno) -> Path:
    """CIF + POSCAR + 3-frame extxyz (one frame with overlapping atoms) + an unreadable CIF + a text file."""
    root = tmp_path / "structures"
    root.mkdir()
    ase.io.write(root / "Si.cif", silicon)
    ase.io.write(root / "POSCAR_rutile", rutile, format="vasp")
    nacl.positions[1] = nacl.positions[0] + [0.1, 0.0, 0.0]
    ase.io.write(root / "frames.extxyz", [alpha_quartz, nacl, wurtzite_zno])
    (root / "broken.cif").write_text("data_broken\n_cell_length_a oops\n")
    (root / "notes.txt").write_text("not a structure")
    return root


def record_model_calls(monkeypatch, kill_at_call: int | None = None) -> list[int]:
    """Patch TensorPredictor.predict to record crystals per call (and raise KeyboardInterrupt at a call)."""
    calls: list[int] = []
    original = TensorPredictor.predict

    def recording(self, crystals, batch_size=64):
        calls.append(len(crystals))
        if len(calls) == kill_at_call:
            raise KeyboardInterrupt
        return original(self, crystals, batch_size=batch_size)

    monkeypatch.setattr(TensorPredictor, "predict", recording)
    return calls


@pytest.fixture
def crystals_predicted(monkeypatch) -> list[int]:
    return record_model_calls(monkeypatch)


def predict(folder: Path, output: Path | None, model: str, *extra: str) -> int:
    args = ["predict", str(folder), "--model", model, "--device", "cpu", "--batch-size", "2", *extra]
    return main(args + (["-o", str(output)] if output else []))


def expected_sources(folder: Path) -> list[str]:
    return [
        f"{folder}/POSCAR_rutile@0",
        f"{folder}/Si.cif@0",
        f"{folder}/broken.cif@0",
        f"{folder}/frames.extxyz@0",
        f"{folder}/frames.extxyz@1",
        f"{folder}/frames.extxyz@2",
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_jsonl_end_to_end(folder, tiny_model, tmp_path, capsys, crystals_predicted):
    out = tmp_path / "results.jsonl"
    assert predict(folder, out, tiny_model) == 0
    rows = read_jsonl(out)
    assert [r["source"] for r in rows] == expected_sources(folder)
    assert [r["index"] for r in rows] == list(range(6))
    assert [r["ok"] for r in rows] == [True, True, False, True, False, True]
    assert rows[2]["error"].startswith("cannot read")
    assert rows[4]["error_type"] == "AtomsTooCloseError" and "(Na) and 1 (Cl)" in rows[4]["error"]
    good = rows[0]
    assert good["symmetry"]["space_group_symbol"] == "P4_2/mnm"
    assert len(good["elastic"]) == 6 and len(good["piezoelectric"]) == 3
    assert good["units"]["elastic"] == "GPa" and good["derived"]["k_vrh"] is not None
    assert len({r["model_sha256"] for r in rows}) == 1 and len(rows[0]["model_sha256"]) == 64
    assert sum(crystals_predicted) == 4
    assert "4 predicted, 2 errors, 0 skipped" in capsys.readouterr().err


def test_second_run_computes_nothing(folder, tiny_model, tmp_path, capsys, crystals_predicted):
    out = tmp_path / "results.jsonl"
    assert predict(folder, out, tiny_model, "--quiet") == 0
    first = out.read_text()
    calls = len(crystals_predicted)
    assert predict(folder, out, tiny_model) == 0  # the two failures are retried, and fail again
    assert len(crystals_predicted) == calls  # no model call at all
    assert out.read_text() == first  # each retried row replaced its error row, in place
    assert "0 predicted, 2 errors, 4 skipped" in capsys.readouterr().err


def test_resume_after_a_kill(folder, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "results.jsonl"
    assert predict(folder, out, tiny_model, "--quiet") == 0
    complete = read_jsonl(out)
    out.unlink()
    record_model_calls(monkeypatch, kill_at_call=2)
    assert predict(folder, out, tiny_model, "--quiet") == 130  # Ctrl-C: a message, no traceback
    assert [r["source"] for r in read_jsonl(out)] == expected_sources(folder)[:2]  # first chunk flushed
    with out.open("a") as handle:
        handle.write('{"source": "half a line from the kil')  # killed in the middle of a write

    monkeypatch.undo()
    calls = record_model_calls(monkeypatch)
    assert predict(folder, out, tiny_model, "--quiet") == 0
    assert sum(calls) == 2  # only quartz and ZnO are left to compute
    resumed = read_jsonl(out)
    assert [r["source"] for r in resumed] == [r["source"] for r in complete]
    for new, old in zip(resumed, complete, strict=True):
        assert new["ok"] == old["ok"]
        if new["ok"]:
            # float32, different batch composition: compare relative to the tensor's norm
            error = np.linalg.norm(np.subtract(new["elastic"], old["elastic"]))
            assert error <= 1e-5 * np.linalg.norm(old["elastic"])


def test_csv_output_and_resume(folder, tiny_model, tmp_path, crystals_predicted):
    out = tmp_path / "results.csv"
    assert predict(folder, out, tiny_model, "-q") == 0
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == csv_columns()
    for column in (
        "elastic_C11_GPa",
        "elastic_C66_GPa",
        "piezoelectric_e33_C_per_m2",
        "piezoelectric_e15_C_per_m2",
        "dielectric_total_xx",
        "dielectric_electronic_yz",
        "k_vrh_GPa",
        "g_vrh_GPa",
        "d33_pC_per_N",
        "eij_max_C_per_m2",
        "refractive_index",
        "eps_total_eigenvalues_3",
        "born_stable",
    ):
        assert column in reader.fieldnames
    assert [r["source"] for r in rows] == expected_sources(folder)
    rutile = rows[0]
    assert rutile["ok"] == "True" and rutile["space_group_number"] == "136"
    assert float(rutile["elastic_C11_GPa"]) == pytest.approx(float(rutile["elastic_C22_GPa"]), rel=1e-9)
    assert abs(float(rutile["piezoelectric_e33_C_per_m2"])) < 1e-12
    assert rows[4]["ok"] == "False" and rows[4]["elastic_C11_GPa"] == ""
    calls = len(crystals_predicted)
    assert predict(folder, out, tiny_model, "-q") == 0
    assert len(crystals_predicted) == calls
    assert len(out.read_text().splitlines()) == 7  # header + 6 rows, nothing appended


def test_globs_and_stdout(folder, tiny_model, capsys):
    assert main(["predict", f"{folder}/*.cif", "--model", tiny_model, "--device", "cpu", "-q"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["source"] for r in rows] == [f"{folder}/Si.cif@0", f"{folder}/broken.cif@0"]
    assert "1 errors" in captured.err  # errors are reported even with --quiet


def test_bad_invocations(folder, tiny_model, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nothing-here"), "--model", tiny_model]) == 2
    assert "no structure files found" in capsys.readouterr().err
    assert main(["info", "--model", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"source": "x@0", "ok": False, "model_sha256": "0" * 64}) + "\n")
    assert predict(folder, other, tiny_model) == 2
    assert "another model" in capsys.readouterr().err


def test_info(tiny_model, capsys):
    assert main(["info", "--model", tiny_model, "--device", "cpu", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["name"] == "test-tiny" and len(card["sha256"]) == 64
    assert card["species"] == list(range(1, 95)) and card["cutoff"] > 0


def test_parser_and_entry_point():
    text = build_parser().format_help()
    for command in ("predict", "info", "train", "evaluate"):
        assert command in text
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("gmt-ase") == "gmt_ase.cli:main"


def run_example(name: str, monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [name, *args])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


def test_quickstart_example(tiny_model, monkeypatch, capsys):
    run_example("quickstart.py", monkeypatch, "--model", tiny_model)
    out = capsys.readouterr().out
    for header in ("=== Si: Fd-3m", "=== ZnO: P6_3mc", "=== BaTiO3: P4mm", "K_VRH ="):
        assert header in out


def test_screen_folder_example(tiny_model, monkeypatch, capsys):
    run_example("screen_folder.py", monkeypatch, str(EXAMPLES / "structures"), "--model", tiny_model, "--min-k", "0")
    lines = capsys.readouterr().out.splitlines()
    for title in ("K_VRH [GPa]", "G_VRH [GPa]", "eps_inf [-]", "e_max [C/m^2]"):
        assert title in lines[0]
    table = [line for line in lines[1:] if line and line.split()[0].endswith("@0")]
    assert len(table) == 6 and not any("failed" in line for line in table)
    assert lines[-1].startswith("K_VRH > 0 GPa: ") and "Si_diamond.cif@0" in lines[-1]


@pytest.mark.skipif(
    not (EXAMPLES.parent / "gmt_ase" / "models" / "default.pt").exists(), reason="shipped default model not present"
)
def test_quickstart_with_the_shipped_model(monkeypatch, capsys):
    run_example("quickstart.py", monkeypatch)
    out = capsys.readouterr().out
    assert "=== ZnO: P6_3mc" in out and "Born stable: True" in out


# --------------------------------------------------------------------------------------------------
# issue 11: output files, resume, exit status, start-up, help
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def good_folder(tmp_path, silicon, rutile) -> Path:
    root = tmp_path / "good"
    root.mkdir()
    ase.io.write(root / "Si.cif", silicon)
    ase.io.write(root / "POSCAR_rutile", rutile, format="vasp")
    return root


@pytest.fixture
def no_network(monkeypatch):
    """Fail the test if the network is built."""
    from gmt_ase.nn.model import GMTNet

    def refuse(self, config):
        raise AssertionError("the network was built")

    monkeypatch.setattr(GMTNet, "__init__", refuse)


FOREIGN_OUTPUTS = {
    "notes.md": b"# my notes\n\nlast line without newline",
    "victim.cif": b"data_x\n_cell_length_a 4.0",
    "config.jsonl": b'{"a": 1}',
    "data.bin": bytes(range(256)) * 4,
    "table.csv": b"a,b\n1,2\n",
    "rows.jsonl": b"[1, 2]\n",
    "half.jsonl": b'{"source": "x@0", "ok": true, "model_sha256": null}\nnot json\n',
}


@pytest.mark.parametrize("name", FOREIGN_OUTPUTS)
def test_an_output_file_that_is_not_ours_is_refused_untouched(name, folder, tiny_model, tmp_path, capsys, no_network):
    out = tmp_path / name
    out.write_bytes(FOREIGN_OUTPUTS[name])
    assert predict(folder, out, tiny_model) == 2  # checked before the model is loaded
    assert out.read_bytes() == FOREIGN_OUTPUTS[name]
    err = capsys.readouterr().err
    assert str(out) in err and "refusing to write" in err and "Traceback" not in err


def test_a_garbage_line_in_the_middle_of_the_output_is_reported(good_folder, tiny_model, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    assert predict(good_folder, out, tiny_model, "-q") == 0
    lines = out.read_text().splitlines(keepends=True)
    damaged = lines[0] + "garbage\n" + lines[1]
    out.write_text(damaged)
    assert predict(good_folder, out, tiny_model, "-q") == 2
    assert out.read_text() == damaged
    assert f"{out} line 2: not a gmt-ase result row" in capsys.readouterr().err


def test_checks_run_before_the_model_is_loaded(folder, tiny_model, tmp_path, capsys, no_network):
    assert predict(folder, tmp_path / "missing" / "out.jsonl", tiny_model) == 2
    assert "output folder" in capsys.readouterr().err
    assert predict(folder, tmp_path, tiny_model) == 2
    assert "is a folder" in capsys.readouterr().err
    assert predict(folder, tmp_path / "out.jsonl", tiny_model, "--symprec", "0") == 2
    assert "--symprec must be positive" in capsys.readouterr().err


def test_failed_rows_are_retried_after_the_input_is_fixed(folder, tiny_model, tmp_path, capsys, silicon):
    out = tmp_path / "results.jsonl"
    assert predict(folder, out, tiny_model, "-q") == 0
    ase.io.write(folder / "broken.cif", silicon)  # the user fixes the broken file
    capsys.readouterr()
    assert predict(folder, out, tiny_model) == 0
    rows = read_jsonl(out)
    assert [r["source"] for r in rows] == expected_sources(folder)  # one row per input, same places
    assert rows[2]["ok"] and rows[2]["symmetry"]["space_group_symbol"] == "Fd-3m"
    err = capsys.readouterr().err
    assert "1 predicted, 1 errors, 4 skipped" in err and "0 new, 1 retried (1 now ok)" in err
    assert "1 not retried" in err  # the unchanged extxyz frame with overlapping atoms fails for good


def test_resuming_from_another_working_directory_adds_nothing(
    good_folder, tiny_model, tmp_path, monkeypatch, crystals_predicted
):
    out = tmp_path / "results.jsonl"
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "good", "--model", tiny_model, "-o", "results.jsonl", "-q"]) == 0
    calls = len(crystals_predicted)
    monkeypatch.chdir(good_folder)
    assert main(["predict", ".", "--model", tiny_model, "-o", str(out), "-q"]) == 0
    assert len(crystals_predicted) == calls and len(read_jsonl(out)) == 2
    assert {r["path"] for r in read_jsonl(out)} == {str(good_folder / "Si.cif"), str(good_folder / "POSCAR_rutile")}


def test_symprec_is_part_of_the_resume_key(good_folder, tiny_model, tmp_path, crystals_predicted):
    out = tmp_path / "results.jsonl"
    assert predict(good_folder, out, tiny_model, "-q") == 0
    assert predict(good_folder, out, tiny_model, "-q", "--symprec", "0.1") == 0
    assert [r["symprec"] for r in read_jsonl(out)] == [0.01, 0.01, 0.1, 0.1]
    calls = len(crystals_predicted)
    assert predict(good_folder, out, tiny_model, "-q", "--symprec", "0.1") == 0
    assert len(crystals_predicted) == calls and len(read_jsonl(out)) == 4


def test_a_rerun_with_nothing_to_do_does_not_build_the_network(good_folder, tiny_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "results.csv"
    assert predict(good_folder, out, tiny_model, "-q") == 0
    from gmt_ase.inference.cache import clear_predictor_cache
    from gmt_ase.nn.model import GMTNet

    clear_predictor_cache()
    monkeypatch.setattr(GMTNet, "__init__", lambda self, config: pytest.fail("network built"))
    assert predict(good_folder, out, tiny_model) == 0
    assert "0 predicted, 0 errors, 2 skipped" in capsys.readouterr().err


def test_info_does_not_build_the_network(tiny_model, capsys, no_network):
    assert main(["info", "--model", tiny_model, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "test-tiny"


def test_exit_status_and_error_messages_when_every_input_fails(tmp_path, tiny_model, rutile, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "random.cif").write_bytes(np.random.default_rng(0).bytes(2000))
    ase.io.write(bad / "POSCAR", rutile, format="vasp")
    text = (bad / "POSCAR").read_text().splitlines()
    (bad / "POSCAR").write_text("\n".join(text[:-3]) + "\n")  # truncated: two atoms missing
    out = tmp_path / "out.jsonl"
    assert predict(bad, out, tiny_model) == 1
    rows = read_jsonl(out)
    assert all(not r["ok"] for r in rows) and len(rows) == 2
    for row, path in zip(rows, (bad / "POSCAR", bad / "random.cif"), strict=True):
        assert row["error"].startswith(f"cannot read {path} as a ")
        assert row["error"].split(": ", 2)[2].strip()  # says what is wrong, never an empty message
    assert "truncated" in rows[0]["error"]
    err = capsys.readouterr().err
    assert f"{bad / 'random.cif'}@0" in err and "0 predicted, 2 errors" in err


def test_subfolders_are_searched_with_recursive_only(good_folder, tiny_model, tmp_path, silicon, capsys):
    (good_folder / "sub").mkdir()
    ase.io.write(good_folder / "sub" / "Si2.cif", silicon)
    out = tmp_path / "results.jsonl"
    assert predict(good_folder, out, tiny_model) == 0
    assert len(read_jsonl(out)) == 2
    assert "1 subfolder(s) not searched (use --recursive)" in capsys.readouterr().err
    assert predict(good_folder, out, tiny_model, "--recursive") == 0
    assert read_jsonl(out)[-1]["source"] == f"{good_folder}/sub/Si2.cif@0"
    only_sub = tmp_path / "only_sub"
    (only_sub / "inner").mkdir(parents=True)
    assert predict(only_sub, None, tiny_model) == 2
    assert "use --recursive" in capsys.readouterr().err


def test_progress_bar_has_a_total_and_the_model_load_is_announced(
    good_folder, tiny_model, tmp_path, monkeypatch, capsys
):
    from gmt_ase.inference.cache import clear_predictor_cache

    clear_predictor_cache()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert predict(good_folder, tmp_path / "out.jsonl", tiny_model) == 0
    err = capsys.readouterr().err
    assert "loading model 'test-tiny'" in err and "2/2" in err


def test_top_level_help_is_plain_text_and_lists_every_command():
    text = build_parser().format_help()
    assert "``" not in text and "exit status" in text
    for command in ("predict", "info", "train", "evaluate"):
        assert f"    {command}" in text


def test_the_installed_entry_point_end_to_end(good_folder, tiny_model, tmp_path):
    import shutil
    import subprocess

    exe = shutil.which("gmt-ase")
    if exe is None:
        pytest.skip("gmt-ase is not installed")
    out = tmp_path / "out.jsonl"
    run = subprocess.run(
        [exe, "predict", str(good_folder), "--model", tiny_model, "-o", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and len(read_jsonl(out)) == 2
    out.write_bytes(b"\x00\x01binary")
    run = subprocess.run(
        [exe, "predict", str(good_folder), "--model", tiny_model, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "binary file" in run.stderr and "Traceback" not in run.stderr
    assert out.read_bytes() == b"\x00\x01binary"
