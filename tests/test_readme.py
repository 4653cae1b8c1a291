"""The README's evidence tables are what the committed results files say."""

import importlib.util
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _readme_module():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "analyses" / "readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_blocks_match_the_results_files():
    readme = _readme_module()
    text = (ROOT / "README.md").read_text()
    names = [match["name"] for match in readme.BLOCK.finditer(text)]
    assert sorted(names) == sorted(readme.BLOCKS), names  # every generator has its place, and only once
    assert readme.render(text) == text, "README.md differs from the results files: run `python analyses/readme.py`"


def test_a_changed_result_changes_the_readme(tmp_path, monkeypatch):
    readme = _readme_module()
    bench = tmp_path / "bench"
    bench.mkdir()
    for f in readme.BENCH.iterdir():
        (bench / f.name).write_text(f.read_text())
    step = pd.read_csv(bench / "step.csv")
    step.loc[0, "ti_step_s"] = 9.8765
    step.to_csv(bench / "step.csv", index=False)
    monkeypatch.setattr(readme, "BENCH", bench)
    assert "9.877" in readme.step_times()
    text = (ROOT / "README.md").read_text()
    assert readme.render(text) != text


def test_each_unfinished_run_is_read_at_its_own_last_aligned_layer(tmp_path, monkeypatch):
    """Runs of programs of different depths share one file: a 2-layer run's last layer is not the
    deeper run's empty column (it printed "—"), and the answer places stay in order."""
    readme = _readme_module()
    pd.DataFrame([
        {"run": "smollm2/a", "step": 5, "held_out_accuracy": 0.5, "prompts": 2, "variable": "x", "layer0": 0.2,
         "layer1": 0.4},
        {"run": "smollm2/b", "step": 7, "held_out_accuracy": 0.1, "prompts": 2, "variable": "y", "layer0": 1.0,
         "layer1": 0.5, "layer2": 0.75},
    ]).to_csv(tmp_path / "injection_unfinished_agreement.csv", index=False)
    pd.DataFrame([{"run": "smollm2/a", "step": 5, "place": p, "accuracy": 1.0} for p in ("1", "end")]
                 + [{"run": "smollm2/b", "step": 7, "place": p, "accuracy": 0.5} for p in ("2", "1", "end")]
                 ).to_csv(tmp_path / "injection_answer_tokens.csv", index=False)
    monkeypatch.setattr(readme, "RESULTS", tmp_path)
    rows = readme.unfinished_agreement().splitlines()
    assert "| 30.0 %; 40.0 %" in rows[2] and "| 75.0 %; 75.0 %" in rows[3], rows
    header = readme.answer_tokens().splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["run", "checkpoint", "place 1", "place 2", "end"]
