"""Residual-stream heatmaps in the compiled basis, one frame per layer (the tracr paper's figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go

from workbench.compiled.bridge import CompiledModel


def _layer_title(hook_name: str) -> str:
    layer, kind = hook_name.split(".")[1], hook_name.split(".")[-1]
    return {"hook_resid_pre": "embeddings", "hook_resid_mid": f"block {layer}: after attention",
            "hook_resid_post": f"block {layer}: after MLP"}[kind]


def residual_figure(compiled: CompiledModel, tokens: Sequence[Any]) -> go.Figure:
    """Heatmap of the residual (positions × labelled dims) with a slider over layers."""
    residuals = compiled.residuals(tokens)
    y = [f"{i}: {t}" for i, t in enumerate([compiled.bos, *tokens])]
    x = compiled.residual_labels
    fig = go.Figure()
    names = list(residuals)
    for index, name in enumerate(names):
        fig.add_trace(go.Heatmap(z=residuals[name].numpy(), x=x, y=y, colorscale="RdBu", zmid=0,
                                 visible=index == len(names) - 1, name=_layer_title(name),
                                 hovertemplate="dim %{x}<br>position %{y}<br>value %{z:.3f}<extra></extra>"))
    steps = [dict(method="update", label=_layer_title(name),
                  args=[{"visible": [j == i for j in range(len(names))]},
                        {"title.text": f"Residual stream — {_layer_title(name)} ({name})"}])
             for i, name in enumerate(names)]
    fig.update_layout(
        title=f"Residual stream — {_layer_title(names[-1])} ({names[-1]})",
        sliders=[dict(active=len(names) - 1, steps=steps, currentvalue={"prefix": "layer: "}, pad={"t": 120})],
        xaxis=dict(title="residual dimension (variable:value)", tickangle=-60),
        yaxis=dict(title="position: token", autorange="reversed"),
        height=max(400, 40 * len(y) + 300),
        width=max(800, 14 * len(x) + 200),
    )
    return fig


def write_residual_figure(compiled: CompiledModel, tokens: Sequence[Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    residual_figure(compiled, tokens).write_html(path, include_plotlyjs=True)
    return path
