"""The training loop of tracr-injection and of the FT+KL baseline (paper §3), one screen long.

    loss = α·CE(answer tokens) + β·Σ_i (1 − cos(map(h_{m_i}), compiled_i)) + γ·KL(original ‖ model)

with the roll intervention at the output of block m_k on task batches (TI only). Runs on
CUDA unchanged; under ``torchrun`` it trains data-parallel (DDP; NCCL on GPU, gloo on CPU).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from tqdm import tqdm
from transformer_lens.utilities.activation_functions import apply_softcap

from workbench.compiled import CompiledModel
from workbench.distributed import process_place
from workbench.errors import WorkbenchError
from workbench.inject import checkpoint
from workbench.inject.config import InjectionConfig
from workbench.inject.data import StepBatches, TaskBatches, TextBatches, step_loader
from workbench.inject.hooks import capture, layer_map, model_hook, roll_hook, roll_hook_name, subspace_projection
from workbench.inject.losses import alignment_loss, answer_ce, kl_to_original
from workbench.inject.monitor import HeldOut
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
        self.last_residual = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"

    def forward(self, ids: torch.Tensor, predicting: torch.Tensor, text_ids: torch.Tensor, roll: float = 1.0,
                aligned: torch.Tensor | None = None):
        """Logits at the ``predicting`` positions only (the answer CE needs no others), the mapped
        residuals at the aligned layers (at the ``aligned`` positions only, ``[n, compiled width]``, when
        given: the map is the widest product of a small model's step), and the logits of the text batch.
        ``roll`` is the rolled share of the rest (``workbench.inject.hooks.roll``; 0 or False: no roll)."""
        store = {}
        hooks = []
        if self.map is not None:
            hooks += [(model_hook(block), capture(store)) for block in self.mapping]
            if roll:
                hooks.append((self.roll_name, roll_hook(subspace_projection(self.map.weight, self.final_dims),
                                                        float(roll))))
        # Last, in its own store: hooks on one name run in order, so when the roll sits on the last residual
        # the answer sees it while the alignment still reads the unrolled residual.
        last = {}
        hooks.append((self.last_residual, capture(last)))
        self.model.run_with_hooks(ids, fwd_hooks=hooks, return_type=None)
        answer_logits = unembed(self.model, last[self.last_residual][predicting])
        residuals = [store[model_hook(block)] for block in self.mapping] if self.map is not None else []
        mapped = [self.map(r if aligned is None else r[aligned]) for r in residuals]
        return answer_logits, mapped, logits_of(self.model, text_ids)


def unembed(model, residual: torch.Tensor) -> torch.Tensor:
    """The model's logits for residuals ``[..., d_model]`` taken after its last block.

    The model's own forward, without the copy of the transposed unembedding that TransformerLens's
    ``Unembed`` makes on every call (a third of a tiny model's forward at a 50k vocabulary).
    """
    flat = residual.reshape(1, -1, residual.shape[-1])
    final = model.ln_final(flat) if model.cfg.normalization_type is not None else flat
    logits = torch.addmm(model.unembed.b_U, final[0], model.unembed.W_U)
    return apply_softcap(logits, model.cfg.output_logits_soft_cap).reshape(*residual.shape[:-1], -1)


def logits_of(model, ids: torch.Tensor) -> torch.Tensor:
    """``model(ids)`` through ``unembed``."""
    return unembed(model, model(ids, stop_at_layer=model.cfg.n_layers))


def step_losses(injector, original, batch: dict, text_ids: torch.Tensor, config: InjectionConfig,
                roll: float = 1.0) -> dict[str, torch.Tensor]:
    """The loss terms of one step: answer CE, KL to the original on text, and (TI) the alignment."""
    with torch.no_grad():
        original_logits = logits_of(original, text_ids)
    answer = batch["answer_mask"][:, 1:]
    predicting = torch.cat([answer, torch.zeros_like(answer[:, :1])], dim=1)
    answer_logits, mapped, text_logits = injector(batch["ids"], predicting, text_ids, roll, aligned=batch["mask"])
    terms = {"ce": answer_ce(answer_logits, batch["ids"][:, 1:][answer]),
             "kl": kl_to_original(text_logits, original_logits)}
    if mapped:
        terms["alignment"] = alignment_loss(mapped, [target[batch["mask"]] for target in batch["targets"]],
                                            config.alignment_reduction)
    return terms


def make_optimizer(injector: Injector, config: InjectionConfig) -> torch.optim.AdamW:
    """AdamW over the model (``lr_model``) and the map (``lr_map``); fused, since on CPU the default
    per-parameter loop costs a sixth of a tiny model's step."""
    groups = [{"params": injector.model.parameters(), "lr": config.lr_model}]
    if injector.map is not None:
        groups.append({"params": injector.map.parameters(), "lr": config.lr_map})
    return torch.optim.AdamW(groups, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, config: InjectionConfig) -> LambdaLR:
    """Linear warm-up over ``warmup_steps``, then constant or cosine decay to 0 at ``steps``."""
    warmup, steps, cosine = config.warmup_steps, config.steps, config.lr_schedule == "cosine"

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def train(config: InjectionConfig, run_dir: str | Path, resume: bool = False, progress: bool = True,
          stop_after: int | None = None) -> dict:
    """Train ``config`` into ``run_dir``; ``resume`` continues from its latest checkpoint exactly.

    ``stop_after`` ends the process's work after that many steps (an interruption, for tests).
    """
    run_dir = Path(run_dir)
    rank, world, device = process_place()
    if rank == 0:
        _check_run_dir(run_dir, config, resume)
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    compiled = task.compile()
    compiled.model.to(device)
    loaded = load_model(config.model, device=str(device), **config.model_kwargs())
    mapping = layer_map(compiled.n_layers, loaded.model.cfg.n_layers, config.layer_map)
    texts = TextBatches(config.text_source, loaded.tokenizer, config.text_tokens, config.seed)
    if rank == 0:  # only now: a start that fails above leaves nothing that blocks the corrected retry
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(config.to_json())
    if world > 1:
        dist.barrier()
    original = copy.deepcopy(loaded.model).requires_grad_(False)
    injector = Injector(loaded.model, compiled, mapping, config.roll_at, config.method == "ti").to(device)
    optimizer = make_optimizer(injector, config)
    scheduler = make_scheduler(optimizer, config)
    start = 0
    if resume and checkpoint.latest(run_dir) is not None:
        state = checkpoint.load(checkpoint.latest(run_dir), injector.model, injector.map, optimizer)
        start = state["step"]
        scheduler.load_state_dict(state["scheduler"])
        _truncate_metrics(run_dir, start, rank)
    trainer = nn.parallel.DistributedDataParallel(injector) if world > 1 else injector
    pool = None if config.prompts == "fresh" else config.train_pool
    tasks = TaskBatches(task, loaded.tokenizer, compiled, config.seed, pool, with_targets=injector.map is not None,
                        supervise_end=config.supervise_end)
    held_out = HeldOut(task, loaded.tokenizer, compiled, config.eval_prompts, config.seed) if config.eval_every else None
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    checks = _checks_at(run_dir, start) if start else {}
    if _target_reached(config, start, checks):
        end = start  # the run stopped at its target: resuming it trains nothing more
    bar = tqdm(range(start, end), initial=start, total=config.steps, disable=not progress or rank != 0,
               desc=f"{config.method} {config.task} on {loaded.name}", unit="step")
    steps = StepBatches(tasks, texts, config.task_batch, config.text_batch, rank, world)
    for step, (batch, text_ids) in zip(bar, step_loader(steps, start, end, config.loader_workers, device)):
        batch, text_ids = _to(batch, device), text_ids.to(device)
        terms = step_losses(trainer, original, batch, text_ids, config, roll=config.roll_share(step))
        loss = config.alpha * terms["ce"] + config.gamma * terms["kl"] + config.beta * terms.get("alignment", 0.0)
        values = {name: float(value.detach()) for name, value in {"loss": loss, **terms}.items()}
        if not all(math.isfinite(v) for v in values.values()):
            last = checkpoint.latest(run_dir)
            raise WorkbenchError(f"loss is not finite at step {step} ({values}); nothing was saved for this step, "
                                 f"the last checkpoint ({last.name if last else 'none'}) is intact: lower the "
                                 "learning rates or check the inputs")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(injector.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        record = {"step": step + 1, **values, "lr_model": scheduler.get_last_lr()[0]}
        checked = held_out is not None and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps)
        if checked:
            checks = {"eval_accuracy": held_out.accuracy(injector.model)}
            if injector.map is not None:
                checks["eval_agreement"] = held_out.agreement(injector.model, injector.map, mapping)
            record.update(checks)
        reached = checked and _target_reached(config, step + 1, checks)
        if rank == 0:
            _log(run_dir, {**record, "time": time.time()})
            bar.set_postfix({**{k: f"{v:.4f}" for k, v in values.items()},
                             **{k.replace("eval_", ""): f"{v:.1%}" for k, v in checks.items()}})
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps or reached:
                checkpoint.save(run_dir, step + 1, injector.model, injector.map, optimizer,
                                {"config": json.loads(config.to_json()), "mapping": mapping,
                                 "scheduler": scheduler.state_dict()})
        if reached:
            end = step + 1
            log.warning("held-out %s reached the target at step %d: stopping",
                        ", ".join(f"{k.replace('eval_', '')} {v:.1%}" for k, v in checks.items()), end)
            break
    bar.close()
    return {"run_dir": str(run_dir), "step": end, "mapping": mapping, "model": loaded.name,
            "accuracy": checks.get("eval_accuracy"), "agreement": checks.get("eval_agreement"),
            "injector": injector, "tokenizer": loaded.tokenizer, "compiled": compiled, "task": task}


def _to(batch: dict, device: torch.device) -> dict:
    return {k: [t.to(device) for t in v] if isinstance(v, list) else v.to(device) for k, v in batch.items()}


def _check_run_dir(run_dir: Path, config: InjectionConfig, resume: bool) -> None:
    config_path = run_dir / "config.json"
    if not config_path.exists():
        return
    if not resume:
        raise WorkbenchError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    saved = json.loads(InjectionConfig.from_file(config_path).to_json())
    ours = json.loads(config.to_json())
    # More steps change no batch (a batch depends on its step only) but do stretch a decaying schedule;
    # the checks and their targets only decide where the run stops; the loader workers, where batches are built.
    free = {"checkpoint_every", "eval_every", "target_accuracy", "target_agreement", "loader_workers"} | (
        {"steps"} if config.lr_schedule == "constant" else set())
    differing = sorted(k for k in ours if k not in free and saved.get(k) != ours[k])
    if differing:
        raise WorkbenchError(f"cannot resume {run_dir} with a different configuration ({differing}); use the run's "
                             "own settings (its config.json) or start a new --out")


def finished(run_dir: str | Path, config: InjectionConfig) -> bool:
    """Whether resuming ``run_dir`` would train nothing: its latest checkpoint is at ``config.steps``
    or at the step where the held-out checks reached their targets (see ``_target_reached``)."""
    run_dir = Path(run_dir)
    last = checkpoint.latest(run_dir)
    if last is None:
        return False
    step = json.loads((last / "state.json").read_text())["step"]
    return step >= config.steps or _target_reached(config, step, _checks_at(run_dir, step))


def _target_reached(config: InjectionConfig, step: int, checks: dict[str, float]) -> bool:
    """Whether the run stops after ``step`` steps: the held-out accuracy reached its target and, for TI,
    the roll has been on (a TI run that never rolled has not had the intervention) and the decoded
    agreement reached ``config.target_agreement`` (the accuracy alone stopped dyck at step 400 with
    87 % agreement: the answer is learnt before the program's variables are)."""
    if not config.target_accuracy or checks.get("eval_accuracy", -1.0) < config.target_accuracy:
        return False
    if config.method != "ti":
        return True
    rolled = config.roll_share(step - 1) == 1.0
    return rolled and (not config.target_agreement or checks.get("eval_agreement", -1.0) >= config.target_agreement)


def _checks_at(run_dir: Path, step: int) -> dict[str, float]:
    """The held-out checks logged at ``step`` (empty if that step had none)."""
    path = run_dir / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    record = next((r for r in records if r["step"] == step), {})
    return {k: v for k, v in record.items() if k in ("eval_accuracy", "eval_agreement")}


def _log(run_dir: Path, record: dict) -> None:
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")


def _truncate_metrics(run_dir: Path, step: int, rank: int) -> None:
    path = run_dir / "metrics.jsonl"
    if rank == 0 and path.exists():
        kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))
