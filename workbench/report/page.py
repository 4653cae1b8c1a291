"""The page: sections of HTML (text, tables, plotly figures) in one self-contained file.

Plotly's JavaScript is embedded once, in the head; every figure is a ``div`` drawn by it, so the
file opens without a network. In compare mode each section shows its two runs side by side.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
table.data { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
table.data td.number { text-align: right; font-variant-numeric: tabular-nums; }
p.missing { background: #fff4e0; border-left: 4px solid #f0a020; padding: 0.5em 0.8em; }
p.verdict { font-weight: bold; } p.failed { color: #b00020; }
div.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; }
div.column { min-width: 0; overflow-x: auto; }
div.figure { overflow-x: auto; }  /* a wide residual heatmap scrolls instead of widening the page */
code { background: #f3f3f3; padding: 0 0.25em; }
"""


@dataclasses.dataclass
class Section:
    """One section of a page: its anchor, title, HTML parts, the figures drawn in it (by div id) and the
    commands that would produce its missing inputs."""

    id: str
    title: str
    parts: list[str] = dataclasses.field(default_factory=list)
    figures: dict[str, go.Figure] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)

    def text(self, text: str, css: str | None = None) -> None:
        self.parts.append(f'<p class="{css}">{text}</p>' if css else f"<p>{text}</p>")

    def table(self, frame: pd.DataFrame) -> None:
        self.parts.append(table_html(frame))

    def figure(self, div_id: str, figure: go.Figure) -> None:
        self.figures[div_id] = figure
        drawn = figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"responsive": True})
        self.parts.append(f'<div class="figure">{drawn}</div>')

    def lacks(self, what: str, command: str) -> None:
        """Say that ``what`` is missing and which command makes it."""
        self.missing.append(command)
        self.text(f"No {html.escape(what)} yet: run <code>{html.escape(command)}</code>.", "missing")

    def body(self) -> str:
        return "\n".join(self.parts)


@dataclasses.dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section]
    column_titles: Sequence[str] = ()  # compare mode: one title per column; each section then holds a Section each
    columns: list[list[Section]] = dataclasses.field(default_factory=list)

    @property
    def figures(self) -> dict[str, go.Figure]:
        return {k: v for section in self.all_sections() for k, v in section.figures.items()}

    @property
    def missing(self) -> list[str]:
        return list(dict.fromkeys(c for section in self.all_sections() for c in section.missing))

    def all_sections(self) -> list[Section]:
        return self.sections + [s for column in self.columns for s in column]

    def html(self) -> str:
        blocks = []
        for index, section in enumerate(self.sections):
            if self.columns:
                cells = "".join(f'<div class="column"><h3>{html.escape(name)}</h3>{column[index].body()}</div>'
                                for name, column in zip(self.column_titles, self.columns))
                body = f'<div class="columns">{cells}</div>'
            else:
                body = section.body()
            blocks.append(f'<section id="{section.id}"><h2>{html.escape(section.title)}</h2>\n{body}\n</section>')
        contents = "".join(f'<li><a href="#{s.id}">{html.escape(s.title)}</a></li>' for s in self.sections)
        return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(self.title)}</title>\n"
                f"<style>{STYLE}</style>\n<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head><body>\n"
                f"<h1>{html.escape(self.title)}</h1><p>{self.subtitle}</p><ul>{contents}</ul>\n"
                + "\n".join(blocks) + "\n</body></html>\n")


def table_html(frame: pd.DataFrame) -> str:
    """``frame`` as an HTML table; cells are shown as their text (format numbers before), numbers right-aligned."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for values in frame.itertuples(index=False):
        cells = "".join(f'<td class="number">{html.escape(str(v))}</td>' if _numeric(v) else
                        f"<td>{html.escape('' if v is None else str(v))}</td>" for v in values)
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _numeric(value) -> bool:
    text = str(value).replace(" %", "").replace("±", "").replace(",", "").strip()
    try:
        float(text.split()[0])
    except (ValueError, IndexError):
        return False
    return True


def percent(share: float) -> str:
    """``0.97`` → ``'97.0 %'``; a missing share (NaN) is empty."""
    return "" if pd.isna(share) else f"{100 * share:.1f} %"


def merge(column_pages: Sequence[Page], title: str, subtitle: str) -> Page:
    """Pages with the same sections in the same order, as one page of side-by-side columns."""
    first = column_pages[0]
    assert all([s.id for s in p.sections] == [s.id for s in first.sections] for p in column_pages)
    headers = [Section(s.id, s.title) for s in first.sections]
    return Page(title, subtitle, headers, [p.title for p in column_pages], [p.sections for p in column_pages])
