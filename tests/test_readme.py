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
