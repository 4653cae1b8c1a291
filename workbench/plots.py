"""Figures shared by the stages and the report: heatmaps and tables with a slider over layers, ROC curves,
noise-ablation curves, written as HTML and PNG. Plotly and pandas only (no torch), so that the report,
which draws them from a run's files, builds in seconds."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

log = logging.getLogger(__name__)

PNG_HINT = ("PNG export needs kaleido and a Chromium: `pip install kaleido==1.5.0` and "
            "`apt-get install -y chromium`; the HTML file was written")


def slider_heatmaps(frames: Sequence[tuple[str, object]], x: Sequence, y: Sequence, title: str,
                    x_title: str, y_title: str, center: float | None = 0.0) -> go.Figure:
    """One heatmap per (label, z) frame, a slider to move between them (the last is shown first)."""
    fig = go.Figure()
    for index, (label, z) in enumerate(frames):
        fig.add_trace(go.Heatmap(z=z, x=list(x), y=list(y), colorscale="RdBu", zmid=center, name=label,
                                 visible=index == len(frames) - 1,
                                 hovertemplate="%{x}<br>%{y}<br>value %{z:.3f}<extra></extra>"))
    steps = [dict(method="update", label=label, args=[{"visible": [j == i for j in range(len(frames))]},
                                                       {"title.text": f"{title} — {label}"}])
             for i, (label, _) in enumerate(frames)]
    fig.update_layout(title=f"{title} — {frames[-1][0]}",
                      sliders=[dict(active=len(frames) - 1, steps=steps, currentvalue={"prefix": "layer: "},
                                    pad={"t": 120})],
                      xaxis=dict(title=x_title, tickangle=-60), yaxis=dict(title=y_title, autorange="reversed"),
                      height=max(400, 30 * len(y) + 300), width=max(800, min(14 * len(x), 4000) + 200))
    return fig


def slider_tables(frames: Sequence[tuple[str, pd.DataFrame]], title: str, first_header: str = "variable"
                  ) -> go.Figure:
    """One table per (label, frame) with a slider to move between them (the last is shown first);
    a cell that is ``None`` shows empty."""
    fig = go.Figure()
    for index, (label, table) in enumerate(frames):
        cells = [list(table.index)] + [["" if v is None else str(v) for v in table[c]] for c in table.columns]
        fig.add_trace(go.Table(header=dict(values=[first_header, *table.columns]), cells=dict(values=cells),
                               visible=index == len(frames) - 1, name=label))
    steps = [dict(method="update", label=label, args=[{"visible": [j == i for j in range(len(frames))]}])
             for i, (label, _) in enumerate(frames)]
    last = frames[-1][1]
    fig.update_layout(title=title, sliders=[dict(active=len(frames) - 1, steps=steps)],
                      height=max(500, 28 * len(last) + 250), width=max(900, 90 * len(last.columns)))
    return fig


def prompt_figures(tokens: Sequence[str], layers: Sequence[str], raw: Sequence, mapped: Sequence,
                   compiled_labels: Sequence[str], tables: Sequence[pd.DataFrame]) -> list[go.Figure]:
    """The paper's Figures 4 (raw residual), 5 (residual mapped to the compiled basis) and 6 (decoded
    variables) for one prompt, each with a slider over the aligned layers (``raw``, ``mapped``: one
    [positions, width] array per layer)."""
    y = [f"{i}: {t}" for i, t in enumerate(tokens)]
    return [slider_heatmaps(list(zip(layers, raw)), range(len(raw[0][0])), y, "Residual stream", "model dimension",
                            "position: token"),
            slider_heatmaps(list(zip(layers, mapped)), compiled_labels, y, "Residual in the compiled basis",
                            "compiled dimension (variable:value)", "position: token"),
            slider_tables(list(zip(layers, tables)), "Decoded program variables")]


def roc_figure(curves: pd.DataFrame, title: str) -> go.Figure:
    """ROC curves per method (columns ``kind`` edges|nodes, ``method``, ``fpr``, ``tpr``), edges and nodes side
    by side, the chance diagonal dotted."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("edges", "nodes"))
    for col, kind in enumerate(("edges", "nodes"), start=1):
        for method, part in curves[curves.kind == kind].groupby("method", sort=False):
            fig.add_trace(go.Scatter(x=part.fpr, y=part.tpr, mode="lines", name=method, legendgroup=method,
                                     showlegend=col == 1, line_shape="hv"), row=1, col=col)
        fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"},
                                 showlegend=False), row=1, col=col)
        fig.update_xaxes(title_text="false positive rate", row=1, col=col)
        fig.update_yaxes(title_text="true positive rate", row=1, col=col)
    fig.update_layout(title=title)
    return fig


def ablation_figure(table: pd.DataFrame) -> go.Figure:
    """Accuracy vs noise norm per subspace, the mean over seeds (a ``noise_ablation`` table)."""
    summary = table.groupby(["subspace", "norm"], as_index=False)[["accuracy", "answer_loss"]].mean()
    return px.line(summary, x="norm", y="accuracy", color="subspace", markers=True,
                   title="Task accuracy under noise in the answer subspace vs random subspaces (mean over seeds)")


def write_figure(fig: go.Figure, path: str | Path, png: bool = False) -> list[Path]:
    """Write ``path`` (.html, self-contained) and, with ``png``, the same name as .png when possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path.with_suffix(".html"), include_plotlyjs=True)
    written = [path.with_suffix(".html")]
    if png:
        try:
            fig.write_image(path.with_suffix(".png"))
            written.append(path.with_suffix(".png"))
        except Exception as error:  # noqa: BLE001 - kaleido/Chromium missing or broken
            log.warning("%s (%s: %s)", PNG_HINT, type(error).__name__, error)
    return written
