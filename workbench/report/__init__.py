"""Application ``report``: one self-contained HTML page for a run, two runs side by side, or a compiled task.

    workbench report RUN_DIR [--out RUN_DIR/report.html]
    workbench report --compare RUN_A RUN_B [--out report_A_vs_B.html]
    workbench report --compiled TASK [--circuits runs/circuits/TASK] [--out report_TASK.html]

A run's page gathers what the other commands wrote into its folder (``workbench.report.run``); a
compiled task's page compiles the task (``workbench.report.compiled``). Like the CLI and the demo it
uses several stages, so it sits beside them: no stage imports it (tests/test_layout.py).
"""

from __future__ import annotations

from pathlib import Path

from workbench.report.page import Page, merge
from workbench.report.run import run_page


def run_report(run_dir: str | Path) -> Page:
    return run_page(run_dir)


def compare_report(run_a: str | Path, run_b: str | Path) -> Page:
    """Both runs' pages, section by section in two columns (e.g. TI beside FT+KL)."""
    pages = [run_page(run_a, prefix="a-"), run_page(run_b, prefix="b-")]
    return merge(pages, f"{run_a} vs {run_b}", " | ".join(page.subtitle for page in pages))


def compiled_report(task: str, circuits_dir: str | Path | None = None) -> Page:
    from workbench.report.compiled import compiled_page

    return compiled_page(task, circuits_dir)


__all__ = ["Page", "compare_report", "compiled_report", "run_report"]
