"""Figures shared by the stages: heatmaps with a slider over layers, written as HTML and PNG."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import plotly.graph_objects as go

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
