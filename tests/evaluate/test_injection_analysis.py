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


def test_unfinished_runs_agreement_is_kept_for_its_checkpoint_only(tmp_path, monkeypatch):
    import json

    import injection

    def checkpoint_at(step):
        folder = tmp_path / "checkpoints" / f"step_{step:07d}"
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(json.dumps({"step": step}))
        (tmp_path / "checkpoints" / "latest").write_text(folder.name)

    computed = []

    def table(run_dir, n):
        computed.append(n)
        return pd.DataFrame({"layer0": [1.0, 0.25], "layer1": [None, 0.5]}, index=["tokens", "count_x"])

    monkeypatch.setattr(injection, "agreement_table", table)
    checkpoint_at(100)
    first = injection.variable_agreement(tmp_path, 8)
    assert list(first.variable) == ["tokens", "count_x"] and list(first.step) == [100, 100]
    assert first.set_index("variable").loc["count_x", "layer1"] == 0.5
    injection.variable_agreement(tmp_path, 8)  # the same checkpoint and prompts: read back, not recomputed
    assert computed == [8]
    injection.variable_agreement(tmp_path, 16)  # other prompts
    checkpoint_at(200)
    again = injection.variable_agreement(tmp_path, 16)  # a newer checkpoint
    assert computed == [8, 16, 16] and list(again.step) == [200, 200]
