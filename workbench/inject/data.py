"""Deterministic batches: the batch of step s depends only on (seed, s), so a resumed run sees
exactly the data an uninterrupted one would, whatever ``steps`` it was started with."""

from __future__ import annotations

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

    A tracr model is almost all zeros: 0.1–2 % of a task program's ``W_Q`` and ``W_in`` entries are
    nonzero, most layers' heads are padding (``W_O`` = 0), and every MLP is padded to the widest
    one (dyck's per-family SequenceMaps make all six layers 7,203 wide). So each head and each MLP
    is computed on the residual dimensions it reads and writes only, and on its hidden units that
    write something: the same sums without their zero terms. An MLP is applied once per distinct
    input it reads (its categorical inputs take few values across a batch), with its weights as
    sparse rows where they are still mostly zeros. In float64, since tracr's MLPs
    discretise with slopes of ~1e4 and float32 rounding in another summation order than the dense
    product's could flip a value. Agrees with the compiled model's own forward pass within its
    float32 rounding (tested).
    """

    def __init__(self, compiled: CompiledModel):
        model, cfg = compiled.model, compiled.model.cfg
        if cfg.normalization_type is not None or cfg.act_fn != "relu" or cfg.positional_embedding_type != "standard":
            raise ValueError("a tracr model has no normalisation, ReLU MLPs and learned positions")
        self.causal, self.scale = cfg.attention_dir == "causal", cfg.attn_scale if cfg.use_attn_scale else 1.0
        self.embed = model.W_E.detach().double()
        self.positions = model.W_pos.detach().double()
        self.layers = [(_heads(block.attn), _MLP(block.mlp)) for block in model.blocks]

    def __call__(self, compiled_ids: torch.Tensor) -> list[torch.Tensor]:
        return [r.float() for r in self.exact(compiled_ids)]

    @torch.no_grad()
    def exact(self, compiled_ids: torch.Tensor) -> list[torch.Tensor]:
        """The targets in float64."""
        ids = compiled_ids.to(self.embed.device)
        residual = self.embed[ids] + self.positions[: ids.shape[1]]
        out = [residual[:, 1:]]
        length = ids.shape[1]
        future = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1) if self.causal else None
        for (heads, b_o), mlp in self.layers:
            # Each block's residual is a new tensor written in place (earlier ones are in ``out``).
            head_outputs = []
            for qk_reads, w_q, b_q, w_k, b_k, v_reads, w_v, b_v, o_writes, w_o in heads:
                read = residual[..., qk_reads]
                scores = (read @ w_q + b_q) @ (read @ w_k + b_k).transpose(1, 2) / self.scale
                if future is not None:
                    scores = scores.masked_fill(future, -torch.inf)
                mixed = scores.softmax(dim=-1) @ (residual[..., v_reads] @ w_v + b_v)
                head_outputs.append((o_writes, mixed @ w_o))
            residual = residual + b_o
            for o_writes, written in head_outputs:
                residual[..., o_writes] += written
            written = mlp(residual)
            residual = residual + mlp.b_out
            residual[..., mlp.writes] += written
            out.append(residual[:, 1:])
        return out


def _nonzero(weight: torch.Tensor, dim: int) -> torch.Tensor:
    """Indices of the rows (``dim`` 0) or columns (1) of a matrix that hold a nonzero entry."""
    return ((weight != 0).any(dim=1 - dim)).nonzero().squeeze(1)


def _heads(attention) -> tuple[list[tuple], torch.Tensor]:
    """Per head that writes something: the dimensions its query/key and value read, its weights on
    them, the dimensions it writes and its output weights on those; and the output bias."""
    w_q, w_k, w_v, w_o = (w.detach().double() for w in (attention.W_Q, attention.W_K, attention.W_V, attention.W_O))
    b_q, b_k, b_v = (b.detach().double() for b in (attention.b_Q, attention.b_K, attention.b_V))
    heads = []
    for h in range(w_o.shape[0]):
        writes = _nonzero(w_o[h], 1)
        if len(writes) == 0:
            continue
        qk_reads = _nonzero(torch.cat([w_q[h], w_k[h]], dim=1), 0)
        v_reads = _nonzero(w_v[h], 0)
        heads.append((qk_reads, w_q[h][qk_reads], b_q[h], w_k[h][qk_reads], b_k[h], v_reads, w_v[h][v_reads], b_v[h],
                      writes, w_o[h][:, writes]))
    return heads, attention.b_O.detach().double()


class _MLP:
    """A compiled MLP on the dimensions it reads, its hidden units that write something and the
    dimensions they write, applied once per distinct input row; a weight that is still mostly zeros
    there (a SequenceMap's hidden unit reads one value of each input: ~1 % of dyck's 295 × 7,203) is
    kept as sparse rows, so its product skips the zeros too. Computed transposed (units × rows), the
    orientation in which a sparse weight is the left operand."""

    def __init__(self, mlp):
        w_in, w_out = mlp.W_in.detach().double(), mlp.W_out.detach().double()
        units = _nonzero(w_out, 0)
        self.reads, self.writes = _nonzero(w_in[:, units], 0), _nonzero(w_out[units], 1)
        self.w_in_t, self.w_out_t = _operand(w_in[self.reads][:, units].T), _operand(w_out[units][:, self.writes].T)
        self.b_in, self.b_out = mlp.b_in.detach().double()[units, None], mlp.b_out.detach().double()
        # Rows are grouped by their projection on a fixed random direction, then compared whole.
        self.probe = torch.randn(len(self.reads), dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def __call__(self, residual: torch.Tensor) -> torch.Tensor:
        """What the MLP writes to ``self.writes`` at every position of ``residual`` (batch × position × d)."""
        rows = residual[..., self.reads].flatten(0, 1)
        if len(self.reads):
            keys, row = torch.unique(rows @ self.probe.to(rows.device), return_inverse=True)
            first = torch.empty(len(keys), dtype=torch.long, device=rows.device)
            distinct = rows[first.scatter_(0, row, torch.arange(len(rows), device=rows.device))]
            if not torch.equal(distinct[row], rows):  # two different rows on one key: no grouping
                distinct, row = rows, torch.arange(len(rows), device=rows.device)
        else:  # no units, or units that read their bias only
            distinct, row = rows[:1], torch.zeros(len(rows), dtype=torch.long, device=rows.device)
        hidden = (self.w_in_t @ distinct.T.contiguous()).add_(self.b_in).relu_()
        return (self.w_out_t @ hidden).T[row].view(*residual.shape[:-1], len(self.writes))


def _operand(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` as the left operand of a product: as sparse rows (CSR) when under 10 % of it is
    nonzero, else itself."""
    if weight.numel() and (weight != 0).double().mean() < 0.1:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
            return weight.to_sparse_csr()
    return weight


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
