"""analyses/injection.py keeps the evidence of runs that are not on this machine."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analyses"))


def test_rows_of_absent_runs_are_kept_and_rows_of_present_runs_replaced(tmp_path, monkeypatch):
    import injection

    monkeypatch.setattr(injection, "RESULTS", tmp_path)
    runs = tmp_path / "runs"
    (runs / "tiny" / "count_ti").mkdir(parents=True)  # re-evaluated now; dyck_ti was trained elsewhere
    pd.DataFrame({"preset": ["tiny", "tiny"], "task": ["count", "dyck"], "method": ["ti", "ti"],
                  "test_strict": [0.10, 0.99]}).to_csv(tmp_path / "injection.csv", index=False)
    new = pd.DataFrame({"preset": ["tiny"], "task": ["count"], "method": ["ti"], "test_strict": [0.97]})
    merged = injection.with_absent_runs("injection.csv", new, runs, injection.run_name)
    assert sorted(zip(merged.task, merged.test_strict)) == [("count", 0.97), ("dyck", 0.99)]
    assert injection.with_absent_runs("missing.csv", new, runs, injection.run_name) is new
    # a new run whose columns come in another order (its own OOD suites) leaves the file's order as it was
    new = pd.DataFrame({"preset": ["tiny"], "task": ["count"], "method": ["ti"], "ood_x_only": [0.5],
                        "test_strict": [0.97]})
    merged = injection.with_absent_runs("injection.csv", new, runs, injection.run_name)
    assert list(merged.columns) == ["preset", "task", "method", "test_strict", "ood_x_only"]
