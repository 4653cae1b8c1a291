"""Deterministic batches: the batch of step s depends only on (seed, s), so a resumed run sees
exactly the data an uninterrupted one would, whatever ``steps`` it was started with."""

from __future__ import annotations

import copy
import logging
import random
import warnings

import torch
from torch.utils.data import DataLoader, Dataset

from workbench.align import align, task_batch
from workbench.compiled import CompiledModel
from workbench.errors import WorkbenchError
from workbench.inject.text import load_text
from workbench.tasks import Example, Task
from workbench.tasks.base import in_test_split

log = logging.getLogger(__name__)

# Consecutive repeats after which a task without a finite prompt list counts as exhausted.
EXHAUSTED_AFTER = 20_000


class PromptStream:
    """Train-split prompts in a seeded order, none repeated until the task's train space is used up.

    A task whose space is small enough to list (``Task.train_space``) is shuffled once per pass;
    otherwise prompts are drawn and repeats rejected. When a pass is exhausted the stream says
    so in the log and starts a new pass (prompts repeat from then on).
    """

    def __init__(self, task: Task, seed: int):
        self.task, self.seed = task, seed
        self.examples: list[Example] = []
        self.passes = 0
        self._space = task.train_space()
        self._rng = random.Random(f"{task.name}:stream:{seed}")
        self._seen: set[str] = set()

    def __getitem__(self, index: int) -> Example:
        while len(self.examples) <= index:
            self._extend()
        return self.examples[index]

    def _extend(self) -> None:
        if self._space is not None:
            order = list(self._space)
            random.Random(f"{self.task.name}:pass:{self.seed}:{self.passes}").shuffle(order)
            self._new_pass(len(order))
            self.examples.extend(order)
            return
        if not self._seen:
            self._new_pass(None)
        for _ in range(EXHAUSTED_AFTER):
            example = self.task.sample(self._rng)
            if example.prompt not in self._seen and not in_test_split(example.prompt):
                self._seen.add(example.prompt)
                self.examples.append(example)
                return
        log.warning("%s: no new train prompt in %d draws after %d distinct ones; starting pass %d (prompts "
                    "repeat from now on)", self.task.name, EXHAUSTED_AFTER, len(self._seen), self.passes + 1)
        self._seen.clear()

    def _new_pass(self, size: int | None) -> None:
        self.passes += 1
        if self.passes > 1:
            log.warning("%s: the train split's %s prompts are used up; pass %d repeats them in a new order",
                        self.task.name, size if size is not None else len(self.examples), self.passes)


class TaskBatches:
    """Training batches: fresh prompts (``PromptStream``) or a fixed pool cycled in order, aligned and
    padded, with the compiled model's residuals at every layer (``targets``, TI only) computed once per
    prompt, when its batch is built."""

    def __init__(self, task: Task, tokenizer, compiled: CompiledModel, seed: int, pool_size: int | None = None,
                 with_targets: bool = True, supervise_end: bool = False):
        self.task, self.tokenizer, self.compiled = task, tokenizer, compiled
        self.supervise_end = supervise_end
        self.targets = CompiledTargets(compiled) if with_targets else None
        self.examples = PromptStream(task, seed) if pool_size is None else task.split("train", pool_size, seed=seed)
        self.cycle = None if pool_size is None else pool_size

    def __call__(self, step: int, size: int, rank: int = 0, world: int = 1) -> dict:
        start = step * size
        indices = [start + i for i in range(rank, size, world)]
        rows = [self.examples[i % self.cycle if self.cycle else i] for i in indices]
        alignments = [align(self.task, e, self.tokenizer, self.compiled.max_seq_len, append_end=self.supervise_end)
                      for e in rows]
        batch = task_batch(alignments, self.compiled, self.tokenizer)
        if self.targets is not None:
            batch["targets"] = self.targets(batch["compiled_ids"])
        return batch


class CompiledTargets:
    """The compiled residual after 0..k compiled blocks, BOS dropped (aligned with model positions).

    tracr pads every layer's MLP to the widest one (dyck's per-family SequenceMaps make all six
    layers 7,203 wide, mostly zeros). Where that padding is most of the work, each MLP keeps only
    its hidden units that write something, computed in float64: tracr's MLPs discretise with slopes
    of ~1e4, so float32 rounding in another summation order than the unpruned product's can flip a
    value. Elsewhere the compiled model's own forward pass is used. Both agree within the float32
    model's rounding (tested).
    """

    def __init__(self, compiled: CompiledModel):
        self.compiled = compiled
        keep = [(block.mlp.W_out.abs().sum(dim=1) > 0).nonzero().squeeze(1) for block in compiled.model.blocks]
        self.prune = sum(map(len, keep)) < 0.5 * compiled.model.cfg.d_mlp * compiled.n_layers
        if not self.prune:
            return
        if compiled.model.cfg.normalization_type is not None or compiled.model.cfg.act_fn != "relu":
            raise ValueError("a tracr model has no normalisation and ReLU MLPs")
        model = self.model = copy.deepcopy(compiled.model).to(torch.float64)
        model.cfg.dtype = torch.float64
        self.mlps = [(block.mlp.W_in[:, units].detach(), block.mlp.b_in[units].detach(),
                      block.mlp.W_out[units].detach(), block.mlp.b_out.detach())
                     for block, units in zip(model.blocks, keep)]

    @torch.no_grad()
    def __call__(self, compiled_ids: torch.Tensor) -> list[torch.Tensor]:
        if not self.prune:
            return compiled_targets(self.compiled, compiled_ids)
        model = self.model
        ids = compiled_ids.to(model.W_E.device)
        residual = model.embed(ids) + model.pos_embed(ids)
        out = [residual[:, 1:]]
        for block, (w_in, b_in, w_out, b_out) in zip(model.blocks, self.mlps):
            residual = residual + block.attn(query_input=residual, key_input=residual, value_input=residual)
            residual = residual + torch.relu(residual @ w_in + b_in) @ w_out + b_out
            out.append(residual[:, 1:])
        return [r.float() for r in out]


@torch.no_grad()
def compiled_targets(compiled: CompiledModel, compiled_ids: torch.Tensor) -> list[torch.Tensor]:
    """The compiled residual after 0..k compiled blocks: the compiled model's own forward pass, block
    by block (``run_with_cache`` computes the same numbers at twice the cost for a small model)."""
    model = compiled.model
    ids = compiled_ids.to(model.W_E.device)
    residual = model.embed(ids) + model.pos_embed(ids)
    out = [residual[:, 1:]]
    for block in model.blocks:
        residual = block(residual)
        out.append(residual[:, 1:])
    return out


class TextBatches:
    """Windows of ``tokens`` tokens of plain text at offsets drawn from (seed, step)."""

    def __init__(self, source: str, tokenizer, tokens: int, seed: int):
        ids = tokenizer(load_text(source), add_special_tokens=False)["input_ids"]
        if len(ids) < 2 * tokens:
            raise WorkbenchError(f"text source {source!r} has only {len(ids)} tokens, fewer than twice "
                                 f"--text-tokens ({tokens}); use a longer text or fewer tokens")
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.tokens, self.seed = tokens, seed

    def __call__(self, step: int, size: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        rng = random.Random(f"text:{self.seed}:{step}")
        starts = [rng.randrange(len(self.ids) - self.tokens) for _ in range(size)]
        return torch.stack([self.ids[s: s + self.tokens] for s in starts[rank::world]])


class StepBatches(Dataset):
    """Item ``s`` is everything training step s reads: its task batch and its text windows (this
    process's share under data parallelism)."""

    def __init__(self, tasks: TaskBatches, texts: TextBatches, task_batch: int, text_batch: int,
                 rank: int = 0, world: int = 1):
        self.tasks, self.texts = tasks, texts
        self.sizes, self.rank, self.world = (task_batch, text_batch), rank, world

    def __getitem__(self, step: int) -> tuple[dict, torch.Tensor]:
        return (self.tasks(step, self.sizes[0], self.rank, self.world),
                self.texts(step, self.sizes[1], self.rank, self.world))


def step_loader(steps: StepBatches, start: int, end: int, workers: int, device: torch.device):
    """An iterator over the batches of steps ``start..end-1``, in order. With ``workers`` > 0 the next
    steps' batches (tokenizing, aligning, the compiled targets) are built in worker processes while
    the current step trains; each batch is a function of its step alone, so no number depends on
    ``workers``."""
    loader = DataLoader(steps, batch_size=None, sampler=range(start, end), num_workers=workers,
                        prefetch_factor=2 if workers else None, pin_memory=device.type == "cuda")
    with warnings.catch_warnings():
        # tracr's import starts JAX's threads; the forked workers never call JAX, so its warning does not apply.
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        return iter(loader)
