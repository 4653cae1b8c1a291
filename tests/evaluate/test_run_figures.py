"""analyses/run_figures.py: refuses runs that do not compute their program, and its README's numbers
are the ablation file's."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "analyses"))


def _results(folder: Path, test_strict: float) -> None:
    pd.DataFrame({"preset": ["tiny"], "task": ["count"], "method": ["ti"], "model": ["tiny-gpt2-4l-128d"],
                  "steps": [300], "test_strict": [test_strict], "agreement_mean": [0.95]}).to_csv(
        folder / "injection.csv", index=False)
    pd.DataFrame({"variable": ["count_x", "indices"], "layer0": [1.0, 1.0], "layer1": [0.8, 1.0],
                  "preset": "tiny", "task": "count", "model": "tiny-gpt2-4l-128d"}).to_csv(
        folder / "injection_agreement.csv", index=False)


def _run(folder: Path, step: int) -> Path:
    run = folder / "tiny" / "count_ti"
    (run / "checkpoints" / f"step_{step:07d}").mkdir(parents=True)
    (run / "checkpoints" / f"step_{step:07d}" / "state.json").write_text(json.dumps({"step": step}))
    (run / "checkpoints" / "latest").write_text(f"step_{step:07d}")
    (run / "config.json").write_text(json.dumps({"task": "count", "method": "ti"}))
    return run


@pytest.mark.parametrize("accuracy, step, message", [(0.5, 300, "scores 50.0% strict"),
                                                    (0.97, 400, "not a TI run evaluated")])
def test_a_run_below_the_bar_or_not_evaluated_is_refused(tmp_path, monkeypatch, capsys, accuracy, step, message):
    import run_figures

    monkeypatch.setattr(run_figures, "RESULTS", tmp_path)
    _results(tmp_path, accuracy)
    with pytest.raises(SystemExit) as exit_:
        run_figures.evaluated_row(_run(tmp_path, step))
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and error.count("\n") == 1 and message in error


def test_the_readme_reports_the_ablation_files_numbers(tmp_path, monkeypatch):
    import run_figures

    monkeypatch.setattr(run_figures, "RESULTS", tmp_path)
    _results(tmp_path, 0.97)
    row = run_figures.evaluated_row(_run(tmp_path, 300))
    ablation = pd.DataFrame({"subspace": ["answer subspace", "random subspace"] * 4,
                             "norm": [0.0, 0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0],
                             "relative_norm": [0.0] * 4 + [0.5] * 4, "seed": [0, 0, 1, 1] * 2,
                             "dimension": 3, "prompts": 10,
                             "accuracy": [0.9, 0.9, 0.9, 0.9, 0.2, 0.8, 0.4, 0.6],
                             "answer_loss": [0.1, 0.1, 0.1, 0.1, 2.0, 0.5, 1.0, 0.5]})
    text = run_figures.readme(Path("runs/x"), row, "a prompt", "blocks.3.hook_resid_pre", ablation, "cmd")
    # at 0.5 × the mean norm: answer (0.2 + 0.4) / 2 = 30 %, random (0.8 + 0.6) / 2 = 70 %: 40 points
    row = next(line for line in text.splitlines() if line.startswith("| 0.5 × mean norm (5.0)"))
    assert [float(cell) for cell in row.split("|")[2:-1]] == [30, 70, 1.5, 0.5]
    # answer loss (2.0 + 1.0) / 2 = 1.5 vs (0.5 + 0.5) / 2 = 0.5: three times
    assert "per nonzero norm: +40.0 (" in text and "1 of 1 norms" in text and "in a random one: 3.00." in text
    assert "count_x 80.0 %, indices 100.0 %" in text and "**97.0 % strict test accuracy**" in text
