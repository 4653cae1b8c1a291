"""Residual-stream heatmaps in the compiled basis, one frame per layer (the tracr paper's figures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import plotly.graph_objects as go

from workbench.compiled.bridge import CompiledModel
from workbench.plots import slider_heatmaps, write_figure


def _layer_title(hook_name: str) -> str:
    layer, kind = hook_name.split(".")[1], hook_name.split(".")[-1]
    return {"hook_resid_pre": "embeddings", "hook_resid_mid": f"block {layer}: after attention",
            "hook_resid_post": f"block {layer}: after MLP"}[kind]


def residual_figure(compiled: CompiledModel, tokens: Sequence[Any]) -> go.Figure:
    """Heatmap of the residual (positions × labelled dims) with a slider over layers."""
    residuals = compiled.residuals(tokens)
    frames = [(f"{_layer_title(name)} ({name})", residual.numpy()) for name, residual in residuals.items()]
    return slider_heatmaps(frames, compiled.residual_labels, [f"{i}: {t}" for i, t in enumerate([compiled.bos, *tokens])],
                           "Residual stream", "residual dimension (variable:value)", "position: token")


def write_residual_figure(compiled: CompiledModel, tokens: Sequence[Any], path: str | Path) -> Path:
    return write_figure(residual_figure(compiled, tokens), path)[0]
