"""Compression figures: accuracy and per-layer cosine vs width; W Wᵀ next to the residual's PCA."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots


def sweep_figure(table: pd.DataFrame, program: str) -> go.Figure:
    long = table.melt(id_vars=["width"], value_vars=[c for c in table if c == "accuracy" or c.startswith("cos")],
                      var_name="metric", value_name="value")
    return px.line(long, x="width", y="value", color="metric", markers=True,
                   title=f"Compression of {program}: output accuracy and per-layer cosine vs width d")


def projection_figure(w: torch.Tensor, residuals: torch.Tensor, labels: list[str], program: str) -> go.Figure:
    """W Wᵀ (which compiled dims share compressed directions) and the explained variance of the residual's PCA."""
    centered = residuals - residuals.mean(0)
    variance = torch.linalg.svdvals(centered) ** 2
    explained = (variance / variance.sum()).cumsum(0)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("W Wᵀ", "PCA of the compiled residual (cumulative)"))
    fig.add_trace(go.Heatmap(z=(w @ w.T).numpy(), x=labels, y=labels, colorscale="RdBu", zmid=0), row=1, col=1)
    fig.add_trace(go.Scatter(x=list(range(1, len(explained) + 1)), y=explained.numpy(), mode="lines+markers",
                             name="explained variance"), row=1, col=2)
    fig.add_vline(x=w.shape[1], line_dash="dash", row=1, col=2)
    fig.update_layout(title=f"{program}: learned projection (d = {w.shape[1]}) and the residual's principal components",
                      height=700, width=1400)
    return fig
