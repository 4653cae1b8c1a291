"""The paper-table scripts (analyses/table{1,2,3}.py) mark a run stopped before its plan and targets."""

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analyses"))


def test_a_table_with_an_unfinished_run_says_what_it_is(tmp_path, monkeypatch):
    import tables

    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    original = {"finished": True, "steps": 0}
    unfinished = [original, {"finished": False, "steps": "800 (unfinished)"}]
    tables.write(pd.DataFrame(unfinished), "t", "T", ["a note"] + tables.unfinished_notes(unfinished))
    assert "- unfinished: the run stopped before its planned steps" in (tmp_path / "t.md").read_text()
    done = [original, {"finished": True, "steps": "1500"}]
    tables.write(pd.DataFrame(done), "u", "U", ["a note"] + tables.unfinished_notes(done))
    assert "unfinished" not in (tmp_path / "u.md").read_text()


def test_runs_of_a_preset_folder_are_found_by_name(tmp_path):
    import tables

    for name in ("dyck_ti", "count_ft", "count_ti_paper_map"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "sum_ti").mkdir()  # no config: not a run
    assert tables.preset_runs(tmp_path) == {("ti", "dyck"): tmp_path / "dyck_ti", ("ft", "count"): tmp_path / "count_ft"}
    assert tables.preset_runs(None) == {}


def test_bad_run_arguments_exit_2_with_one_line(tmp_path, capsys):
    import tables

    for call in (lambda: tables.parse_runs(["ti:dyck"]), lambda: tables.preset_runs(tmp_path / "missing")):
        with pytest.raises(SystemExit) as exit_:
            call()
        assert exit_.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
