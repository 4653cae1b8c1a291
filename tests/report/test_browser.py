"""The pages in a real headless Chromium: every plot drawn with data, every section there, no console error.

Skipped, with the reason printed, where Chromium, chromedriver or Selenium is missing (.ci/run installs them).
"""

import pytest
from conftest import COMPILED_SECTIONS, REAL_RUN, SECTIONS

from workbench.report import compare_report, run_report
from workbench.report.browser import Browser, missing_browser



@pytest.fixture(scope="module")
def browser():
    reason = missing_browser()
    if reason:
        print(f"skipping the browser tests: {reason}")
        pytest.skip(reason)
    opened = Browser()
    yield opened
    opened.close()


def _check(browser, page, path, sections, figures):
    """Open ``page`` written to ``path``: the sections in order, each figure drawn with data, no error."""
    path.write_text(page.html(), encoding="utf-8")
    rendered = browser.open(path)
    assert rendered.errors == []
    assert rendered.sections == sections
    assert sorted(plot["id"] for plot in rendered.plots) == sorted(figures)
    for plot in rendered.plots:
        shown = [trace for trace in plot["traces"] if trace["visible"]]
        assert plot["drawn"] and shown and all(trace["size"] > 0 for trace in shown), plot
    return rendered


def test_a_run_page_renders(browser, fake_ti, tmp_path):
    page = run_report(fake_ti)
    _check(browser, page, tmp_path / "run.html", SECTIONS, page.figures)
    shot = browser.screenshot(tmp_path / "run.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_compare_page_renders(browser, fake_ti, fake_ft, tmp_path):
    page = compare_report(fake_ti, fake_ft)
    _check(browser, page, tmp_path / "compare.html", SECTIONS, page.figures)


def test_a_compiled_page_renders(browser, compiled_count_page, tmp_path):
    _check(browser, compiled_count_page, tmp_path / "compiled.html", COMPILED_SECTIONS, compiled_count_page.figures)


@pytest.mark.skipif(not (REAL_RUN / "eval_original" / "summary.json").exists(),
                    reason=f"no evaluated real run at {REAL_RUN} (runs/ is not in git; see the README's Report section)")
def test_the_real_run_page_renders(browser, tmp_path):
    page = run_report(REAL_RUN)
    _check(browser, page, tmp_path / "count_ti.html", SECTIONS, page.figures)
    shot = browser.screenshot(tmp_path / "count_ti.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the README's image is made the same way


def test_the_cli_saves_a_screenshot_of_the_page(browser, fake_ti, tmp_path, capsys):
    from workbench.cli import main

    shot = tmp_path / "shot.png"
    assert main(["report", str(fake_ti), "--out", str(tmp_path / "page.html"), "--screenshot", str(shot)]) == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"screenshot {shot} (" in capsys.readouterr().out

