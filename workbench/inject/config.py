"""The one configuration of an injection run (paper defaults, appendix B)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Literal

from workbench.align.layers import explicit_blocks
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
    layer_map: str = "paper"  # model block m_i ↔ compiled layer i: 'paper', 'spread' or blocks like '0,7,14,21'
    roll_at: str = "after_last"  # 'after_last' = blocks.{m_k}.hook_resid_post (the paper's code), or a hook name
    supervise_end: bool = False  # also train the end-of-text token after the answer (the paper: answer tokens only)
    roll_after: int = 0  # steps without the roll first, so the map can find the answer subspace before it is enforced
    roll_ramp: int = 0  # then steps over which the rolled share of the rest rises linearly to 1; 0 = all at once
    text_source: str = "brown"  # 'brown' (offline default), 'fineweb' (hub), or a local file/folder
    seed: int = 42
    checkpoint_every: int = 100
    lr_schedule: Literal["constant", "cosine"] = "constant"  # the paper trains at a constant rate
    warmup_steps: int = 0  # linear warm-up before the schedule
    grad_clip: float = 0.0  # max global gradient norm; 0 = no clipping (the paper's)
    eval_every: int = 500  # steps between held-out accuracy checks; 0 = never
    eval_prompts: int = 64  # held-out test prompts of those checks
    target_accuracy: float = 0.0  # stop once the held-out accuracy reaches it; 0 = train all steps
    target_agreement: float = 0.0  # TI: and once the held-out decoded agreement (mean over variables, layers) does
    prompts: Literal["fresh", "pool"] = "fresh"  # fresh: never repeat a prompt while the space allows it
    train_pool: int = 100_000  # with prompts='pool': distinct training examples drawn, then cycled
    # Processes building the next steps' batches while one trains (0: in the loop). For a GPU whose host
    # cores are idle; on 2 CPU cores they compete with the step itself (no gain measured, step_bench).
    loader_workers: int = 0
    tiny_layers: int = 12  # depth of tiny-* models
    tiny_d_model: int = 64  # width of tiny-* models

    def __post_init__(self) -> None:
        if self.method not in ("ti", "ft"):
            raise WorkbenchError(f"unknown method {self.method!r}; use 'ti' (tracr-injection) or 'ft' (FT+KL)")
        choices = {"alignment_reduction": ("sum", "mean"),
                   "lr_schedule": ("constant", "cosine"), "prompts": ("fresh", "pool")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise WorkbenchError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.layer_map not in ("paper", "spread"):
            explicit_blocks(self.layer_map)
        for name in ("steps", "task_batch", "text_batch", "text_tokens", "checkpoint_every", "eval_prompts",
                     "train_pool", "tiny_layers"):
            if getattr(self, name) < 1:
                raise WorkbenchError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr_model", "lr_map", "alpha", "beta", "gamma", "grad_clip", "warmup_steps", "eval_every",
                     "roll_after", "roll_ramp", "loader_workers"):
            if not getattr(self, name) >= 0:
                raise WorkbenchError(f"{name} must be a number ≥ 0, got {getattr(self, name)}")
        for name in ("target_accuracy", "target_agreement"):
            if not 0 <= getattr(self, name) <= 1:
                raise WorkbenchError(f"{name} is a share in [0, 1], got {getattr(self, name)}")
        if self.tiny_d_model < 16 or self.tiny_d_model % 32:
            raise WorkbenchError(f"tiny_d_model must be a multiple of 32 (heads of 16, grouped by 2), "
                                 f"got {self.tiny_d_model}")

    def roll_share(self, step: int) -> float:
        """The share of the rest taken from the neighbour at (0-based) ``step``: 0 before ``roll_after``,
        then rising over ``roll_ramp`` steps to 1 (FT+KL: always 0).

        >>> [InjectionConfig(roll_after=10, roll_ramp=4).roll_share(step) for step in (9, 10, 12, 14, 20)]
        [0.0, 0.2, 0.6, 1.0, 1.0]
        """
        if self.method != "ti" or step < self.roll_after:
            return 0.0
        return min(1.0, (step - self.roll_after + 1) / (self.roll_ramp + 1))

    def model_kwargs(self) -> dict:
        """What ``load_model`` needs besides the name (the shape and seed of a tiny model)."""
        return {"n_layers": self.tiny_layers, "d_model": self.tiny_d_model, "seed": self.seed}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: Path) -> "InjectionConfig":
        try:
            fields = json.loads(Path(path).read_text())
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(fields) - known)
            if unknown:
                raise WorkbenchError(f"{path} has unknown fields {unknown}: it was written by another version; "
                                     "start a new run folder")
            return cls(**fields)
        except (ValueError, TypeError) as error:
            raise WorkbenchError(f"{path} is not a valid run configuration ({error}); restore it or start a new "
                                 "run folder") from error
