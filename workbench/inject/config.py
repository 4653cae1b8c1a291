"""The one configuration of an injection run (paper defaults, appendix B)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

from workbench.errors import WorkbenchError


@dataclasses.dataclass
class InjectionConfig:
    task: str = "dyck"
    model: str = "smollm2-135m"
    method: Literal["ti", "ft"] = "ti"  # tracr-injection, or the FT+KL baseline (no alignment, no roll)
    steps: int = 80_000
    task_batch: int = 12
    text_batch: int = 12
    text_tokens: int = 70
    lr_model: float = 1e-6
    lr_map: float = 1e-4
    alpha: float = 1.0  # CE on answer tokens
    beta: float = 1.0  # alignment loss
    gamma: float = 1.0  # KL to the frozen original on plain text
    alignment_reduction: Literal["sum", "mean"] = "sum"  # the paper's code sums layer terms; its text writes a mean
    layer_map: Literal["paper", "spread"] = "paper"  # model block m_i ↔ compiled layer i
    roll_at: str = "after_last"  # 'after_last' = blocks.{m_k}.hook_resid_post (the paper's code), or a hook name
    text_source: str = "brown"  # 'brown' (offline default), 'fineweb' (hub), or a local file/folder
    seed: int = 42
    checkpoint_every: int = 100
    log_every: int = 1
    tiny_layers: int = 12  # depth of tiny-* models
    train_pool: int = 100_000  # distinct training examples drawn before cycling

    def __post_init__(self) -> None:
        if self.method not in ("ti", "ft"):
            raise WorkbenchError(f"unknown method {self.method!r}; use 'ti' (tracr-injection) or 'ft' (FT+KL)")
        if self.alignment_reduction not in ("sum", "mean"):
            raise WorkbenchError("alignment_reduction must be 'sum' or 'mean'")
        if self.layer_map not in ("paper", "spread"):
            raise WorkbenchError("layer_map must be 'paper' or 'spread'")
        for name in ("steps", "task_batch", "text_tokens", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise WorkbenchError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: Path) -> "InjectionConfig":
        return cls(**json.loads(Path(path).read_text()))
