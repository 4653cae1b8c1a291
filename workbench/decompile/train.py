"""Training the meta-model on a zoo (thesis §5.2–5.5): AdamW, warm-up + cosine, gradient clipping, input noise.

A run folder holds ``config.json`` (the zoo and every setting), ``vocabulary.json`` (the grid
columns' classes, from the training split), ``metrics.jsonl`` (one line per step, and the
validation check every ``eval_every`` steps) and ``checkpoints/`` (the injection trainer's
atomic safetensors + JSON checkpoints: model, optimizer, RNG; the scheduler in the step's
state). ``resume=True`` continues from the latest checkpoint and gives the weights an
uninterrupted run would have: the batch of step s is fixed by (seed, s) (one permutation of the
training split per epoch from a generator seeded by the epoch), and dropout and noise draw from
the global RNG, which the checkpoint restores.

The same code runs on CUDA when there is a GPU, and under ``torchrun`` data-parallel (DDP;
each rank takes every world-th example of the step's global batch, rank 0 writes).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm

from workbench.decompile.data import Examples, add_noise, load_examples
from workbench.decompile.metamodel import (
    GridVocabulary,
    MetaModel,
    MetaModelConfig,
    constrained_grid,
    grid_loss,
    predict_ids,
)
from workbench.decompile.metrics import token_accuracy
from workbench.distributed import process_place
from workbench.errors import WorkbenchError, check_settings
from workbench.inject import checkpoint

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``noise`` is the thesis's σ in units of each parameter's standard deviation."""

    model: MetaModelConfig = MetaModelConfig()
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    noise: float = 0.4
    seed: int = 0
    eval_every: int = 250
    eval_programs: int = 256
    checkpoint_every: int = 250
    train_programs: int = 0  # the first N programs of the train split (a learning curve over zoo size); 0 = all

    def __post_init__(self):
        checks = [("steps", self.steps >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
                  ("lr", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
                  ("weight_decay", self.weight_decay >= 0, "0 or more"),
                  ("warmup_steps", self.warmup_steps >= 0, "0 or more"),
                  ("grad_clip", self.grad_clip >= 0, "0 (none) or more"),
                  ("noise", self.noise >= 0 and math.isfinite(self.noise), "0 or more"),
                  ("eval_every", self.eval_every >= 0, "0 (never) or more"),
                  ("eval_programs", self.eval_programs >= 1, "at least 1"),
                  ("checkpoint_every", self.checkpoint_every >= 1, "at least 1"),
                  ("train_programs", self.train_programs >= 0, "0 (all) or more")]
        check_settings("training", self, checks)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "TrainConfig":
        return cls(**{**data, "model": MetaModelConfig(**data["model"])})


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup: int, steps: int) -> LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return LambdaLR(optimizer, factor)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """The training examples of ``step``: a slice of the per-epoch permutations (a function of seed and step)."""
    first, last = step * batch_size, (step + 1) * batch_size
    parts = []
    for epoch in range(first // n, (last - 1) // n + 1):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        lo, hi = max(first - epoch * n, 0), min(last - epoch * n, n)
        parts.append(order[lo:hi])
    return torch.cat(parts)


def _check_run_dir(run_dir: Path, saved_config: dict, resume: bool) -> None:
    path = run_dir / "config.json"
    if not path.exists():
        if resume and run_dir.exists() and any(run_dir.iterdir()):
            raise WorkbenchError(f"{run_dir} holds no meta-model run (no config.json); choose another --out")
        return
    if not resume:
        raise WorkbenchError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    try:
        existing = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise WorkbenchError(f"{path} is not a run config ({error}); choose another --out") from None
    free = {"checkpoint_every", "eval_every", "eval_programs"}  # none of them changes a weight
    # a setting added after the run was made holds its default there
    ours, theirs = saved_config["train"], {**TrainConfig().to_json(), **existing.get("train", {})}
    differing = sorted(k for k in ours if k not in free and theirs.get(k) != ours[k])
    if Path(existing.get("zoo", "")).resolve() != Path(saved_config["zoo"]).resolve():
        differing.append("zoo")
    if differing:
        raise WorkbenchError(f"cannot resume {run_dir} with different settings ({', '.join(differing)}); use the "
                             "run's own (its config.json) or choose another --out")


def _log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_metrics(run_dir: Path, step: int) -> None:
    """Drop the lines of steps after ``step`` (logged after the checkpoint a resumed run starts from)."""
    path = run_dir / "metrics.jsonl"
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


@torch.no_grad()
def predict(model: MetaModel, examples: Examples, vocabulary: GridVocabulary, constrained: bool = True,
            batch_size: int = 64) -> list[list[list[str]]]:
    """Predicted grids (eval mode: no dropout, no noise): grammar-constrained (:func:`constrained_grid`), or
    ``constrained=False``: every slot's argmax on its own, as the thesis reads its meta-model."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    grids = []
    for start in range(0, len(examples), batch_size):
        part = slice(start, start + batch_size)
        logits = [column.cpu() for column in model(examples.weights[part].to(device), examples.mask[part].to(device))]
        if constrained:
            grids += [constrained_grid([column[i] for column in logits], vocabulary) for i in range(len(logits[0]))]
        else:
            grids += [vocabulary.decode(ids) for ids in predict_ids(logits)]
    model.train(was_training)
    return grids


@torch.no_grad()
def validation_check(model: MetaModel, examples: Examples, targets: torch.Tensor,
                     vocabulary: GridVocabulary) -> dict:
    """Loss and thesis token accuracy (each slot's argmax, the thesis's reading) on (a prefix of) the validation
    split; nothing if it is empty."""
    if not len(examples):
        return {}
    device = next(model.parameters()).device
    model.eval()
    losses = []
    for start in range(0, len(examples), 64):
        part = slice(start, start + 64)
        logits = model(examples.weights[part].to(device), examples.mask[part].to(device))
        losses.append(float(grid_loss(logits, targets[part].to(device))) * len(examples.weights[part]))
    model.train()
    predicted = predict(model, examples, vocabulary, constrained=False)
    accuracy = sum(token_accuracy(t, p) for t, p in zip(examples.grids, predicted)) / len(examples)
    return {"val_loss": sum(losses) / len(examples), "val_token_accuracy": accuracy}


def build_model(config: MetaModelConfig, vocabulary: GridVocabulary) -> MetaModel:
    return MetaModel(config, vocabulary.sizes())


def train(config: TrainConfig, zoo: Path | str, run_dir: Path | str, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train a meta-model on ``zoo``'s train split into ``run_dir``; ``resume`` continues it exactly.

    ``stop_after`` ends this call after that many steps (an interruption, for tests).
    """
    run_dir, zoo = Path(run_dir), Path(zoo)
    if run_dir.exists() and not run_dir.is_dir():
        raise WorkbenchError(f"--out {run_dir} is a file; give a folder for the run")
    rank, world, device = process_place()
    saved = {"zoo": str(zoo.resolve()), "train": config.to_json()}
    if rank == 0:
        _check_run_dir(run_dir, saved, resume)
    train_set = load_examples(zoo, "train", config.model.max_weight_tokens, limit=config.train_programs or None)
    if len(train_set) < config.batch_size:
        raise WorkbenchError(f"the zoo's train split has {len(train_set)} programs, fewer than --batch-size "
                             f"{config.batch_size}; generate a larger zoo or lower the batch size")
    validation = load_examples(zoo, "validation", config.model.max_weight_tokens, limit=config.eval_programs)
    vocabulary_path = run_dir / "vocabulary.json"
    vocabulary = (GridVocabulary.from_json(json.loads(vocabulary_path.read_text())) if resume and
                  vocabulary_path.exists() else GridVocabulary.from_grids(train_set.grids))
    targets = train_set.targets(vocabulary, config.model.rows)
    val_targets = validation.targets(vocabulary, config.model.rows)
    if rank == 0:  # only now: a start that fails above leaves nothing that blocks the corrected retry
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(saved, indent=1))
        vocabulary_path.write_text(json.dumps(vocabulary.to_json()))
    torch.manual_seed(config.seed)
    model = build_model(config.model, vocabulary).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    start = 0
    if resume and checkpoint.latest(run_dir) is not None:
        state = checkpoint.load(checkpoint.latest(run_dir), model, None, optimizer)
        start = state["step"]
        scheduler.load_state_dict(state["scheduler"])
        if rank == 0:
            _truncate_metrics(run_dir, start)
    trainer = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    bar = tqdm(range(start, end), initial=start, total=config.steps, disable=not progress or rank != 0,
               desc=f"meta-model on {len(train_set)} programs", unit="step", dynamic_ncols=True)
    model.train()
    last = time.perf_counter()
    for step in bar:
        chosen = batch_indices(step, config.batch_size, len(train_set), config.seed)[rank::world]
        weights = add_noise(train_set.weights[chosen], train_set.value_std[chosen], train_set.value_count[chosen],
                            config.noise).to(device)
        loss = grid_loss(trainer(weights, train_set.mask[chosen].to(device)), targets[chosen].to(device))
        if not math.isfinite(loss.item()):
            raise WorkbenchError(f"loss is not finite at step {step}; the last checkpoint is intact: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or float("inf"))
        optimizer.step()
        scheduler.step()
        now = time.perf_counter()
        record = {"step": step + 1, "loss": loss.item(), "lr": scheduler.get_last_lr()[0], "grad_norm": float(norm),
                  "samples_per_s": config.batch_size / max(now - last, 1e-9)}
        last = now
        if config.eval_every and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps):
            record.update(validation_check(model, validation, val_targets, vocabulary))
            last = time.perf_counter()  # the check's time is not training throughput
        if rank == 0:
            _log(run_dir, {**record, "time": time.time()})
            bar.set_postfix({k: f"{record[k]:.4f}" for k in ("loss", "val_loss", "val_token_accuracy")
                             if k in record})
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                checkpoint.save(run_dir, step + 1, model, None, optimizer, {"scheduler": scheduler.state_dict()})
    bar.close()
    return {"run_dir": str(run_dir), "step": end, "model": model, "vocabulary": vocabulary}


def load_trained(run_dir: Path | str, device: str = "cpu") -> tuple[MetaModel, GridVocabulary, dict]:
    """The run's model at its latest intact checkpoint, its vocabulary and its config.json (with ``step``)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists() or not (run_dir / "vocabulary.json").exists():
        raise WorkbenchError(f"{run_dir} is not a meta-model run (no config.json / vocabulary.json); train one "
                             f"with `workbench decompile train --zoo ZOO --out {run_dir}`")
    saved = json.loads((run_dir / "config.json").read_text())
    config = TrainConfig.from_json(saved["train"])
    vocabulary = GridVocabulary.from_json(json.loads((run_dir / "vocabulary.json").read_text()))
    folder, skipped = checkpoint.newest_intact(run_dir)
    for bad, reason in skipped:
        log.warning("skipping %s: %s", bad, reason)
    if folder is None:
        raise WorkbenchError(f"{run_dir} has no intact checkpoint yet; train it (or let it reach its first "
                             f"checkpoint_every={config.checkpoint_every} steps)")
    from safetensors.torch import load_file

    model = build_model(config.model, vocabulary)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.to(device).eval()
    step = json.loads((folder / "state.json").read_text())["step"]
    return model, vocabulary, {**saved, "step": step, "config": config}
