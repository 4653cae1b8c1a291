from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from fake_run import write_fake_run

ROOT = Path(__file__).resolve().parent.parent.parent
REAL_RUN = ROOT / "runs" / "report" / "count_ti"  # a copy of runs/presets/tiny/count_ti with every command run on it
SECTIONS = ["config", "curves", "accuracy", "perplexity", "agreement", "prompt", "ablation", "circuits"]
COMPILED_SECTIONS = ["program", "structure", "residual", "circuits"]


class _PageReader(HTMLParser):
    """Each <section>'s tables (header row first, cells as text) and its text, as a browser would show them."""

    def __init__(self):
        super().__init__()
        self.tables, self.text, self.section = {}, {}, None
        self._row, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.section = dict(attrs)["id"]
            self.tables[self.section], self.text[self.section] = [], ""
        elif tag == "table" and ("class", "data") in attrs:
            self.tables[self.section].append([])
        elif tag == "tr" and self.section and self.tables[self.section]:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self.section][-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self.section:
            self.text[self.section] += data


def read_page(html: str) -> _PageReader:
    reader = _PageReader()
    reader.feed(html)
    return reader


def section_table(html: str, section: str, index: int = -1) -> pd.DataFrame:
    rows = read_page(html).tables[section][index]
    return pd.DataFrame(rows[1:], columns=rows[0])


@pytest.fixture(scope="module")
def fake_ti(tmp_path_factory) -> Path:
    return write_fake_run(tmp_path_factory.mktemp("runs") / "count_ti")


@pytest.fixture(scope="module")
def fake_ft(tmp_path_factory) -> Path:
    return write_fake_run(tmp_path_factory.mktemp("runs") / "count_ft", method="ft")


@pytest.fixture(scope="session")
def compiled_count_page(tmp_path_factory):
    """The compiled count task's page, with no tier-1 scores yet (an empty circuits folder)."""
    from workbench.report import compiled_report

    return compiled_report("count", tmp_path_factory.mktemp("no-circuits"))
