"""The leaderboard (analyses/leaderboard.py) lays out the tier tables' rows, which analyses/circuits.py
computes once per target and reuses only when the code and settings that made them are the same."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.circuits.benchmark import benchmark, compiled_target

ANALYSES = Path(__file__).resolve().parents[2] / "analyses"
sys.path.insert(0, str(ANALYSES))
import circuits  # noqa: E402
import leaderboard  # noqa: E402

SETTINGS = dict(methods="eap,random", resamples=2, n=4)
METRICS = ["edge_auc", "edge_auc_std", "node_auc", "cpr", "cpr_std", "cmd", "cmd_std", "score_rank_stability"]


def _fail(*_, **__):
    raise AssertionError("computed again")


@pytest.fixture(scope="module")
def shift_by(tmp_path_factory):
    """The tier-1 table of tracr's shift_by (8 edges) with two methods, its rows folder and the board."""
    rows = tmp_path_factory.mktemp("rows")
    table, notes = circuits.tier_table(1, ["shift_by"], "zero", rows=rows, figures=None, **SETTINGS)
    return table, rows, leaderboard.leaderboard(table, None)


def test_the_board_holds_the_tier_tables_numbers(shift_by):
    table, _, board = shift_by
    assert list(board.columns) == leaderboard.BOARD
    assert list(board.method) == ["eap", "random"] and (board.tier == 1).all() and (board.target == "shift_by").all()
    assert (board.resamples == 2).all() and board.task_accuracy.isna().all()
    pd.testing.assert_frame_equal(board[METRICS], table[METRICS])
    # the same numbers as the benchmark run directly on the same target and settings (rounded to 4 places)
    summary, _, _ = benchmark(compiled_target("shift_by"), "eap,random", resamples=2, n=4)
    np.testing.assert_allclose(board[METRICS].to_numpy(float), summary[METRICS].to_numpy(float), atol=5e-5)


def test_rows_are_reused_only_for_the_same_code_and_settings(shift_by, monkeypatch):
    table, rows, _ = shift_by
    monkeypatch.setattr(circuits, "benchmark", _fail)
    again, _ = circuits.tier_table(1, ["shift_by"], "zero", rows=rows, figures=None, **SETTINGS)
    pd.testing.assert_frame_equal(again, table)
    with pytest.raises(AssertionError, match="computed again"):
        circuits.tier_table(1, ["shift_by"], "zero", rows=rows, figures=None, **{**SETTINGS, "n": 5})
    # --stored: only what is stored, the rest listed as not computed
    table, notes = circuits.tier_table(1, ["shift_by"], "zero", rows=rows, figures=None, compute=False,
                                       **{**SETTINGS, "n": 5})
    assert table is None and notes == ["shift_by: not computed yet (no stored rows for this code and these settings)"]
    monkeypatch.setattr(circuits, "code_version", lambda: "another")
    with pytest.raises(AssertionError, match="computed again"):
        circuits.tier_table(1, ["shift_by"], "zero", rows=rows, figures=None, **SETTINGS)


def test_written_files_and_method_summary(shift_by, tmp_path):
    _, _, board = shift_by
    two_targets = pd.concat([board, board.assign(target="other", edge_auc=[0.5, 0.25], cpu_seconds=[1.0, 3.0])])
    summary = leaderboard.method_summary(two_targets).set_index("method")
    assert summary.loc["eap", "mean edge AUC"] == pytest.approx((board.edge_auc.iloc[0] + 0.5) / 2, abs=1e-3)
    assert summary.loc["random", "median CPU s"] == pytest.approx((board.cpu_seconds.iloc[1] + 3.0) / 2, abs=1e-3)
    assert (summary.targets == 2).all()
    written = leaderboard.write_leaderboard(two_targets, ["a note"], tmp_path)
    assert [p.name for p in written] == ["circuits_leaderboard.csv", "circuits_leaderboard.md",
                                         "circuits_leaderboard.html"]
    pd.testing.assert_frame_equal(pd.read_csv(written[0]), two_targets.reset_index(drop=True), check_dtype=False)
    text = written[1].read_text()
    assert "## Per method" in text and "- a note" in text and all(name in text for name in leaderboard.MEANINGS)


def test_truth_check_row_names_the_inert_true_edge_of_make_reverse():
    """analyses/truth_check.py's row for reverse under zero ablation: every scored edge cut, one true edge
    no input needs (the BOS fallback of an always-matching selector, see tests/circuits/test_truth.py)."""
    import truth_check

    row = truth_check.check("reverse", "zero", n=96)
    assert row["cut"] == "all" and row["edges"] == 77 and row["true_edges"] == 13 and row["inputs"] == 96
    assert (row["inert_true_edges"], row["inert"]) == (1, "input->a3.h0.q")
    assert (row["missed_edges"], row["missed"]) == (0, "")


def test_rows_of_a_run_not_on_this_machine_stand_for_it(shift_by, tmp_path, monkeypatch):
    """Tier 2: the committed rows of a run trained elsewhere are laid out for it (its checkpoint cannot be
    checked); a run with neither folder nor rows gets a note, not a crash."""
    table, _, _ = shift_by
    monkeypatch.setattr(circuits, "benchmark", _fail)
    spec = str(tmp_path / "elsewhere" / "count_ti")
    key = circuits._key(2, spec, 8, "resample", SETTINGS["methods"], SETTINGS["resamples"], SETTINGS["n"], None)
    table.reindex(columns=circuits.COLUMNS).assign(**{**key, "checkpoint": "step_0003000"}).to_csv(
        tmp_path / f"tier2_{circuits._slug(spec)}.csv", index=False)
    reused, notes = circuits.tier_table(2, [spec], "resample", rows=tmp_path, figures=None, **SETTINGS)
    assert notes == [] and len(reused) == len(table)
    missing, notes = circuits.tier_table(2, [spec + "_gone"], "resample", rows=tmp_path, figures=None, **SETTINGS)
    assert missing is None and "the run is not on this machine" in notes[0]


def test_a_tier2_run_that_is_nowhere_exits_2_with_one_line(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, str(ANALYSES / "circuits.py"), "--tier", "2", "--run", str(tmp_path / "no_run")],
                          capture_output=True, text=True, timeout=300)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]  # library warnings aside
    assert done.returncode == 2 and len(errors) == 1
    assert errors[0].startswith("error: no run folder and no stored rows for --run")


def test_truth_check_resumes_from_its_written_rows(tmp_path, monkeypatch):
    """Rows are written after every (program, ablation) and reused by a rerun of the same code and inputs."""
    import tables
    import truth_check

    calls = []

    def fake_check(spec, ablation, n):
        calls.append((spec, ablation))
        return {"target": spec, "ablation": ablation, "edges": 8, "scored_edges": 8, "true_edges": 3, "cut": "all",
                "inputs": n, "inert_true_edges": 0, "missed_edges": 0, "inert": "", "missed": "", "cpu_seconds": 0.1}

    for module in (tables, truth_check):
        monkeypatch.setattr(module, "RESULTS", tmp_path)
    monkeypatch.setattr(truth_check, "check", fake_check)
    argv = ["truth_check.py", "--programs", "shift_by,length", "--ablations", "zero,mean", "--n", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    truth_check.main()
    assert len(calls) == 4
    first = pd.read_csv(tmp_path / "circuits_truth_check.csv")
    # TIER1 order (length before shift_by), then ablation order
    assert list(zip(first.program, first.ablation)) == [("length", "zero"), ("length", "mean"),
                                                        ("shift_by", "zero"), ("shift_by", "mean")]
    truth_check.main()
    assert len(calls) == 4  # all reused
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "circuits_truth_check.csv"), first)
    monkeypatch.setattr(truth_check, "code_version", lambda: "another")
    truth_check.main()
    assert len(calls) == 8


def test_a_run_retrained_to_the_same_step_is_another_target(tmp_path):
    import json

    folder = tmp_path / "checkpoints" / "step_0003000"
    folder.mkdir(parents=True)
    (tmp_path / "checkpoints" / "latest").write_text(folder.name)

    def weights(model_sum):
        (folder / "manifest.json").write_text(json.dumps({"model.safetensors": model_sum, "map.safetensors": "9" * 64}))
        return circuits._checkpoint(2, str(tmp_path))

    first, retrained = weights("a" * 64), weights("b" * 64)
    assert first.startswith("step_0003000@") and retrained.startswith("step_0003000@") and first != retrained
    assert circuits._checkpoint(1, str(tmp_path)) == ""
