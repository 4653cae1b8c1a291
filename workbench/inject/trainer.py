"""The training loop of tracr-injection and of the FT+KL baseline (paper §3), one screen long.

    loss = α·CE(answer tokens) + β·Σ_i (1 − cos(map(h_{m_i}), compiled_i)) + γ·KL(original ‖ model)

with the roll intervention at the output of block m_k on task batches (TI only). Runs on
CUDA unchanged; under ``torchrun`` it trains data-parallel (DDP; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from workbench.compiled import CompiledModel
from workbench.errors import WorkbenchError
from workbench.inject import checkpoint
from workbench.inject.config import InjectionConfig
from workbench.inject.data import TaskBatches, TextBatches
from workbench.inject.hooks import capture, compiled_hook, layer_map, model_hook, roll_hook, roll_hook_name, \
    subspace_projection
from workbench.inject.losses import alignment_loss, answer_ce, kl_to_original
from workbench.models import load_model
from workbench.tasks import get_task

log = logging.getLogger(__name__)


class Injector(nn.Module):
    """The trained model plus (TI only) the linear map to the compiled residual; forward = one step's activations."""

    def __init__(self, model, compiled: CompiledModel, mapping: list[int], roll_at: str, use_alignment: bool):
        super().__init__()
        self.model, self.mapping = model, mapping
        self.map = nn.Linear(model.cfg.d_model, compiled.model.cfg.d_model) if use_alignment else None
        self.final_dims = compiled.dims_of(compiled.output_variable)
        self.roll_name = roll_hook_name(mapping, roll_at)

    def forward(self, ids: torch.Tensor, text_ids: torch.Tensor):
        store, hooks = {}, []
        if self.map is not None:
            hooks = [(model_hook(block), capture(store)) for block in self.mapping]
            hooks.append((self.roll_name, roll_hook(subspace_projection(self.map.weight, self.final_dims))))
        task_logits = self.model.run_with_hooks(ids, fwd_hooks=hooks)
        mapped = [self.map(store[model_hook(block)]) for block in self.mapping] if self.map is not None else []
        return task_logits, mapped, self.model(text_ids)


def _distributed() -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return rank, world, device


def train(config: InjectionConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train ``config`` into ``run_dir``; ``resume`` continues from its latest checkpoint exactly.

    ``stop_after`` ends the process's work after that many steps (an interruption, for tests).
    """
    run_dir = Path(run_dir)
    rank, world, device = _distributed()
    if rank == 0:
        _prepare_run_dir(run_dir, config, resume)
    if world > 1:
        dist.barrier()
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    compiled = task.compile()
    compiled.model.to(device)
    loaded = load_model(config.model, device=str(device), n_layers=config.tiny_layers, seed=config.seed)
    mapping = layer_map(compiled.n_layers, loaded.model.cfg.n_layers, config.layer_map)
    original = copy.deepcopy(loaded.model).requires_grad_(False)
    injector = Injector(loaded.model, compiled, mapping, config.roll_at, config.method == "ti").to(device)
    groups = [{"params": injector.model.parameters(), "lr": config.lr_model}]
    if injector.map is not None:
        groups.append({"params": injector.map.parameters(), "lr": config.lr_map})
    optimizer = torch.optim.AdamW(groups)
    start = 0
    if resume and checkpoint.latest(run_dir) is not None:
        start = checkpoint.load(checkpoint.latest(run_dir), injector.model, injector.map, optimizer)["step"]
        _truncate_metrics(run_dir, start, rank)
    trainer = nn.parallel.DistributedDataParallel(injector) if world > 1 else injector
    tasks = TaskBatches(task, loaded.tokenizer, compiled, min(config.train_pool, config.steps * config.task_batch),
                        config.seed)
    texts = TextBatches(config.text_source, loaded.tokenizer, config.text_tokens, config.seed)
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    bar = tqdm(range(start, end), initial=start, total=config.steps, disable=not progress or rank != 0,
               desc=f"{config.method} {config.task} on {loaded.name}", unit="step")
    for step in bar:
        batch = {k: v.to(device) for k, v in tasks(step, config.task_batch, rank, world).items()}
        text_ids = texts(step, config.text_batch, rank, world).to(device)
        with torch.no_grad():
            original_logits = original(text_ids)
            targets = _compiled_targets(compiled, batch["compiled_ids"]) if injector.map is not None else []
        task_logits, mapped, text_logits = trainer(batch["ids"], text_ids)
        terms = {"ce": answer_ce(task_logits, batch["ids"], batch["answer_mask"]),
                 "kl": kl_to_original(text_logits, original_logits)}
        if mapped:
            terms["alignment"] = alignment_loss(mapped, targets, batch["mask"], config.alignment_reduction)
        loss = config.alpha * terms["ce"] + config.gamma * terms["kl"] + config.beta * terms.get("alignment", 0.0)
        values = {name: float(value.detach()) for name, value in {"loss": loss, **terms}.items()}
        if not all(v == v and abs(v) != float("inf") for v in values.values()):
            last = checkpoint.latest(run_dir)
            raise WorkbenchError(f"loss is not finite at step {step} ({values}); nothing was saved for this step, "
                                 f"the last checkpoint ({last.name if last else 'none'}) is intact: lower the "
                                 "learning rates or check the inputs")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if rank == 0:
            _log(run_dir, {"step": step + 1, **values, "time": time.time()})
            bar.set_postfix({k: f"{v:.4f}" for k, v in values.items()})
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
                checkpoint.save(run_dir, step + 1, injector.model, injector.map, optimizer,
                                {"config": json.loads(config.to_json()), "mapping": mapping})
    bar.close()
    return {"run_dir": str(run_dir), "step": end, "mapping": mapping, "model": loaded.name,
            "injector": injector, "tokenizer": loaded.tokenizer, "compiled": compiled, "task": task}


@torch.no_grad()
def _compiled_targets(compiled: CompiledModel, compiled_ids: torch.Tensor) -> list[torch.Tensor]:
    k = compiled.n_layers
    names = [compiled_hook(i, k) for i in range(k + 1)]
    _, cache = compiled.model.run_with_cache(compiled_ids, names_filter=names)
    return [cache[name][:, 1:] for name in names]


def _prepare_run_dir(run_dir: Path, config: InjectionConfig, resume: bool) -> None:
    config_path = run_dir / "config.json"
    if config_path.exists():
        saved = json.loads(config_path.read_text())
        ours = json.loads(config.to_json())
        differing = {k for k in ours if k not in ("steps", "checkpoint_every") and saved.get(k) != ours[k]}
        if not resume:
            raise WorkbenchError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        if differing:
            raise WorkbenchError(f"cannot resume {run_dir} with a different configuration ({sorted(differing)})")
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(config.to_json())


def _log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_metrics(run_dir: Path, step: int, rank: int) -> None:
    path = run_dir / "metrics.jsonl"
    if rank == 0 and path.exists():
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))
