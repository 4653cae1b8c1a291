"""Edge patching: run a model with any set of graph edges ablated, and the metric every method shares.

Ablating the edge sender → receiver replaces, in the receiver's input only, the sender's
current output by its ablated output (zero, its mean over the corrupt data, or its output on
the corrupt input: resample ablation). The patch is ``input + Σ a_e (ablated_s − current_s)``
with one coefficient ``a_e ∈ [0, 1]`` per edge, so gradient methods differentiate the very
function the patching methods evaluate (``a = 0``: the model, ``a = 1``: the edge ablated).

Several coefficient vectors can be run in one forward pass (``ablated`` of shape ``[K, edges]``:
the clean rows are stacked K times along the batch, as auto-circuit batches its patches);
ACDC evaluates the trials of all its thresholds this way (:meth:`Experiment.losses`).

The metric is a loss, lower = closer to the full model's behaviour on the clean data:
cross-entropy of the full model's own answers at the scored positions (categorical output),
or ``sign · (clean − output)`` averaged over the scored positions (numerical output; the sign
points from the fully ablated output to the clean one).
"""

from __future__ import annotations

import dataclasses
import functools

import torch
from transformer_lens import HookedTransformer

from workbench.circuits.graph import Graph
from workbench.errors import WorkbenchError
from workbench.inject.hooks import add_hook, capture

ABLATIONS = ("zero", "mean", "resample")


def _sender_hooks(graph: Graph) -> list[tuple[str, list[int]]]:
    """(hook name, sender indices it yields: one per head for ``hook_z``, whose heads' results z·W_O are the outputs).

    Per-head results are computed from ``hook_z`` rather than read from TransformerLens's
    ``hook_result``, whose broadcast product costs 10x the forward pass on compiled models.
    """
    hooks, index = [("blocks.0.hook_resid_pre", [0])], 1
    for layer in range(graph.n_layers):
        n = graph.n_heads if graph.level == "head" else 1
        name = f"blocks.{layer}.attn.hook_z" if graph.level == "head" else f"blocks.{layer}.hook_attn_out"
        hooks += [(name, list(range(index, index + n))), (f"blocks.{layer}.hook_mlp_out", [index + n])]
        index += n + 1
    return hooks


def _receiver_hooks(graph: Graph) -> list[tuple[str, list[int]]]:
    """(hook name, receiver indices whose input it carries; one per head for a head-level q/k/v input)."""
    hooks, index = [], 0
    for layer in range(graph.n_layers):
        if graph.level == "head":
            n = graph.n_heads
            for x, kind in enumerate("qkv"):
                rows = [index + 3 * h + x for h in range(n)]
                hooks.append((f"blocks.{layer}.hook_{kind}_input", rows))
            index += 3 * n
        else:
            hooks += [(f"blocks.{layer}.hook_{kind}_input", [index]) for kind in "qkv"]
            index += 1
        hooks.append((f"blocks.{layer}.hook_mlp_in", [index]))
        index += 1
    hooks.append((f"blocks.{graph.n_layers - 1}.hook_resid_post", [index]))
    return hooks


def prepare(model: HookedTransformer, graph: Graph) -> None:
    """Turn on the split hooks the graph patches (outputs unchanged up to float rounding) and freeze the
    weights (gradient methods differentiate the edge coefficients only)."""
    model.requires_grad_(False)
    model.set_use_split_qkv_input(True)
    model.set_use_hook_mlp_in(True)


@dataclasses.dataclass
class Prefix:
    """A forward pass stopped before block ``layer``: resume it when only later receivers change (ACDC)."""

    layer: int
    resid_pre: torch.Tensor  # blocks.{layer}.hook_resid_pre
    outputs: list[torch.Tensor]  # the senders before the block

    def select(self, copies: list[int], n_copies: int) -> "Prefix":
        """The prefix of the stacked copies ``copies`` of a pass run on ``n_copies`` stacked copies of the rows."""
        if list(copies) == list(range(n_copies)):
            return self
        index = torch.as_tensor(copies, dtype=torch.long)

        def pick(x: torch.Tensor) -> torch.Tensor:
            return x.view(n_copies, -1, *x.shape[1:])[index].reshape(-1, *x.shape[1:])

        return Prefix(self.layer, pick(self.resid_pre), [pick(x) for x in self.outputs])


def first_sender(graph: Graph, layer: int) -> int:
    """Index of the first sender of block ``layer`` (senders before it: input and earlier blocks)."""
    return 1 + layer * ((graph.n_heads if graph.level == "head" else 1) + 1)


def run_graph(model: HookedTransformer, graph: Graph, tokens: torch.Tensor, ablated: torch.Tensor | None = None,
              replacement: torch.Tensor | None = None, mask: torch.Tensor | None = None,
              start: Prefix | None = None, stop_for: int | None = None, reference: torch.Tensor | None = None,
              embeddings: torch.Tensor | None = None):
    """Logits with ``ablated[e]`` of each edge patched in, and the senders' outputs ``[senders, B, T, d]``.

    ``replacement`` holds the senders' ablated outputs (``None``: zero ablation); ``mask``
    marks real tokens of right-padded rows (bidirectional models need it). ``start`` resumes
    a forward pass from a ``Prefix`` (valid while no receiver before its block changed);
    ``stop_for=L`` returns the ``Prefix`` of block L instead. Call :func:`prepare` first.

    ``ablated`` of shape ``[K, edges]`` runs K patchings at once: ``tokens`` and ``mask`` are
    then the ``B`` rows stacked K times (``tokens.repeat(K, 1)``; copy k = rows kB … kB + B − 1)
    and ``replacement`` stays ``[senders, B, T, d]``. ``reference`` (``[senders, B, T, d]``)
    replaces the senders' current outputs in the patch, ``a·(ablated − reference)``: the
    forward pass at ``a = 0`` is unchanged, the gradient in ``a`` multiplies the receivers'
    gradients by the fixed difference ``ablated − reference`` (EAP-GP). ``embeddings``
    replaces the embeddings (``blocks.0.hook_resid_pre``, the ``input`` sender) by the given
    tensor.
    """
    store: dict[str, torch.Tensor] = {}
    results: dict[str, torch.Tensor] = {}
    first_layer = 0 if start is None else start.layer

    def runs(name: str) -> bool:
        """Whether the hook fires in this (possibly resumed) pass: the embeddings only in a full one."""
        return start is None if name == "blocks.0.hook_resid_pre" else int(name.split(".")[1]) >= first_layer

    senders = [(name, indices) for name, indices in _sender_hooks(graph) if runs(name)]

    def outputs() -> list[torch.Tensor]:
        found = [] if start is None else list(start.outputs)
        for name, indices in senders:
            if name not in store:
                break
            if name.endswith("hook_z"):
                if name not in results:
                    w_o = model.blocks[int(name.split(".")[1])].attn.W_O
                    results[name] = torch.einsum("bphk,hkd->bphd", store[name], w_o)
                found += [results[name][:, :, i] for i in range(len(indices))]
            else:
                found.append(store[name])
        return found

    coefficients, copies = None, None
    if ablated is not None and ablated.dim() == 2:  # K patchings, one per stacked copy of the rows
        copies = ablated.shape[0]
        coefficients = torch.cat([ablated, ablated.new_zeros(copies, 1)], 1)[:, graph.edge_index]  # [K, R, S]
    elif ablated is not None:
        coefficients = torch.cat([ablated, ablated.new_zeros(1)])[graph.edge_index]  # [receivers, senders]
    structural = graph.edge_index >= 0
    rows_of = {name: rows for name, rows in _receiver_hooks(graph) if runs(name)}

    computed: dict[tuple[int, ...], torch.Tensor | None] = {}  # a layer-level attention receiver feeds q, k and v

    def delta(name: str) -> torch.Tensor | None:
        if coefficients is None:
            return None
        rows = rows_of[name]
        if len(rows) == 1 and tuple(rows) in computed:
            return computed[tuple(rows)]
        if copies is not None:
            return batched_delta(name, rows)
        a = coefficients[rows]
        live = structural[rows].any(0) if a.requires_grad else (a != 0).any(0)
        columns = live.nonzero().flatten().tolist()
        if not columns:
            return None
        if reference is None:
            current = outputs()
            diff = -torch.stack([current[c] for c in columns])
        else:
            diff = -reference[columns]
        if replacement is not None:
            diff = diff + replacement[columns]
        change = torch.einsum("rc,cbtd->btrd", a[:, columns].to(diff.dtype), diff)
        if len(rows) > 1:
            return change
        computed[tuple(rows)] = change[:, :, 0] if name.endswith(("mlp_in", "resid_post")) else change
        return computed[tuple(rows)]

    def batched_delta(name: str, rows: list[int]) -> torch.Tensor | None:
        """``delta`` for K stacked copies: copy k patched with ``coefficients[k]``."""
        a = coefficients[:, rows]  # [K, rows, senders]
        columns = (a != 0).any(1).any(0).nonzero().flatten().tolist()
        if not columns:
            return None
        current = outputs()
        diff = -torch.stack([current[c] for c in columns])  # [c, K·B, T, d]
        diff = diff.view(len(columns), copies, -1, *diff.shape[2:])
        if replacement is not None:
            diff = diff + replacement[columns].unsqueeze(1)
        change = torch.einsum("krc,ckbtd->kbtrd", a[:, :, columns].to(diff.dtype), diff)
        change = change.reshape(-1, *change.shape[2:])  # [K·B, T, rows, d]
        if len(rows) > 1:
            return change
        computed[tuple(rows)] = change[:, :, 0] if name.endswith(("mlp_in", "resid_post")) else change
        return computed[tuple(rows)]

    hooks = []
    if embeddings is not None and start is None:
        hooks.append(("blocks.0.hook_resid_pre", lambda activation, hook: embeddings))
    hooks += [(name, capture(store)) for name, _ in senders]
    hooks += [(name, add_hook(delta)) for name in rows_of]
    if stop_for is not None:  # TransformerLens returns the residual entering block stop_for
        resid_pre = model.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=mask, stop_at_layer=stop_for)
        before = [resid_pre] if stop_for == 0 else outputs()[: first_sender(graph, stop_for)]  # 0: the embeddings
        return Prefix(stop_for, resid_pre, before)
    if start is None:
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=mask)
    else:
        logits = model.run_with_hooks(start.resid_pre, fwd_hooks=hooks, attention_mask=mask,
                                      start_at_layer=start.layer)
    return logits, torch.stack(outputs())


def _mean_over_rows(outputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Each sender's output averaged over the rows that have a real token at each position (over every
    row where none has, so that what every token writes, such as tracr's ``one``, stays as it is)."""
    weight = outputs.new_ones(outputs.shape[1:3]) if mask is None else mask.to(outputs.dtype)
    weight = torch.where(weight.sum(0, keepdim=True) > 0, weight, torch.ones_like(weight))
    weight = weight[None, :, :, None]
    mean = (outputs * weight).sum(1, keepdim=True) / weight.sum(1, keepdim=True).clamp(min=1)
    return mean.expand_as(outputs).contiguous()


class Experiment:
    """A model, its graph, clean and corrupt data, an ablation and the metric: what every method receives.

    ``positions [B, T]`` marks where the metric is read; ``clean_mask`` and ``corrupt_mask``
    mark the real tokens of right-padded rows (``None``: no padding); ``domain`` marks the
    scored edges (``None``: all of them; see :attr:`domain`). Building an experiment runs the model
    on the clean data (the answers the metric keeps) and, for mean and resample ablation, on
    the corrupt data (the senders' replacement outputs).
    """

    def __init__(self, model: HookedTransformer, graph: Graph, clean: torch.Tensor, corrupt: torch.Tensor,
                 positions: torch.Tensor, ablation: str = "resample", numerical: bool = False,
                 clean_mask: torch.Tensor | None = None, corrupt_mask: torch.Tensor | None = None,
                 domain=None):
        if ablation not in ABLATIONS:
            raise WorkbenchError(f"unknown ablation {ablation!r}; use one of {ABLATIONS}")
        if clean.shape != corrupt.shape or clean.shape != positions.shape:
            raise WorkbenchError(f"clean {tuple(clean.shape)}, corrupt {tuple(corrupt.shape)} and positions "
                                 f"{tuple(positions.shape)} must have the same shape")
        if not positions.any():
            raise WorkbenchError("no scored position: the metric would be empty")
        self.model, self.graph, self.ablation, self.numerical = model, graph, ablation, numerical
        device = next(model.parameters()).device
        self.clean, self.corrupt = clean.to(device), corrupt.to(device)
        self.positions = positions.to(device)
        self.clean_mask = None if clean_mask is None else clean_mask.long().to(device)
        corrupt_mask = None if corrupt_mask is None else corrupt_mask.long().to(device)
        prepare(model, graph)
        with torch.no_grad():
            self.replacement = None
            if ablation != "zero":
                _, corrupt_out = run_graph(model, graph, self.corrupt, mask=corrupt_mask)
                self.replacement = corrupt_out if ablation == "resample" else _mean_over_rows(corrupt_out, corrupt_mask)
            clean_logits, _ = run_graph(model, graph, self.clean, mask=self.clean_mask)
            if numerical:
                self.clean_output = clean_logits[..., 0]
                empty, _ = run_graph(model, graph, self.clean, torch.ones(len(graph.edges)), self.replacement,
                                     self.clean_mask)
                self.sign = torch.where(self.clean_output >= empty[..., 0], 1.0, -1.0)
            else:
                self.answers = clean_logits.argmax(-1)
        self.n_edges = len(graph.edges)
        self.domain = domain

    @property
    def domain(self) -> torch.Tensor:
        """The scored domain (bool per edge): the edges the truth speaks about.

        Only these edges are scored by the methods, removed by ACDC and chosen among by a
        circuit; every other edge stays in every circuit, the empty one included (tier 2:
        the layers after the last aligned block and the edges into the output).
        """
        return self._domain

    @domain.setter
    def domain(self, domain) -> None:
        domain = torch.ones(self.n_edges, dtype=torch.bool) if domain is None else torch.as_tensor(domain)
        if domain.shape != (self.n_edges,) or domain.dtype != torch.bool:
            raise WorkbenchError(f"the scored domain must be one bool per edge ({self.n_edges}), got "
                                 f"{tuple(domain.shape)} {domain.dtype}")
        if not domain.any():
            raise WorkbenchError("the scored domain is empty: no edge to score")
        self._domain = domain
        self.__dict__.pop("full_and_empty", None)  # the empty circuit depends on the domain

    @classmethod
    def from_data(cls, model: HookedTransformer, graph: Graph, data, ablation: str = "resample",
                  domain=None) -> "Experiment":
        """An experiment on a ``workbench.circuits.data.CircuitData``."""
        return cls(model, graph, data.clean, data.corrupt, data.positions, ablation, data.numerical,
                   data.clean_mask, data.corrupt_mask, domain)

    def loss_of_logits(self, logits: torch.Tensor) -> torch.Tensor:
        if self.numerical:
            return (self.sign * (self.clean_output - logits[..., 0]))[self.positions].mean()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), self.answers, reduction="none")
        return nll[self.positions].mean()

    def loss(self, ablated: torch.Tensor | None = None, start: Prefix | None = None) -> torch.Tensor:
        """The metric with ``ablated[e]`` of each edge patched in (``None``: the full model)."""
        with torch.set_grad_enabled(ablated is not None and ablated.requires_grad):
            logits, _ = run_graph(self.model, self.graph, self.clean, ablated, self.replacement, self.clean_mask,
                                  start)
            return self.loss_of_logits(logits)

    def _stacked(self, copies: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The clean rows and their mask stacked ``copies`` times along the batch."""
        mask = None if self.clean_mask is None else self.clean_mask.repeat(copies, 1)
        return self.clean.repeat(copies, 1), mask

    @torch.no_grad()
    def losses(self, ablated: torch.Tensor, start: Prefix | None = None) -> torch.Tensor:
        """The metric of each of K patchings ``ablated [K, edges]``, run in one forward pass (``[K]``).

        Each value is computed as :meth:`loss` computes it for that row of ``ablated`` alone
        (the K copies of the clean rows stacked along the batch). ``start``: a prefix of the
        same K copies (:meth:`prefix` with the same K, or ``Prefix.select``).
        """
        copies = ablated.shape[0]
        tokens, mask = self._stacked(copies)
        logits, _ = run_graph(self.model, self.graph, tokens, ablated, self.replacement, mask, start)
        logits = logits.view(copies, -1, *logits.shape[1:])
        return torch.stack([self.loss_of_logits(logits[k]) for k in range(copies)])

    @torch.no_grad()
    def prefix(self, ablated: torch.Tensor, layer: int) -> Prefix:
        """The clean forward pass under ``ablated`` stopped before block ``layer`` (``[K, edges]``: for K
        stacked copies, as :meth:`losses` runs them)."""
        tokens, mask = (self.clean, self.clean_mask) if ablated.dim() == 1 else self._stacked(ablated.shape[0])
        return run_graph(self.model, self.graph, tokens, ablated, self.replacement, mask, stop_for=layer)

    @functools.cached_property
    def clean_outputs(self) -> torch.Tensor:
        """The senders' outputs on the clean rows, unpatched (``[senders, B, T, d]``; computed once)."""
        with torch.no_grad():
            return run_graph(self.model, self.graph, self.clean, mask=self.clean_mask)[1]

    def logits(self, ablated: torch.Tensor | None = None, embeddings: torch.Tensor | None = None,
               reference: torch.Tensor | None = None) -> torch.Tensor:
        """The output on the clean rows with ``ablated`` patched in and, optionally, the embeddings replaced
        and the patch taken against ``reference`` (see :func:`run_graph`); differentiable."""
        return run_graph(self.model, self.graph, self.clean, ablated, self.replacement, self.clean_mask,
                         reference=reference, embeddings=embeddings)[0]

    @functools.cached_property
    def full_and_empty(self) -> tuple[float, float]:
        """The metric of the full model and of the empty circuit (every edge of the domain ablated), computed once."""
        return (self.keep_only(torch.ones(self.n_edges, dtype=torch.bool)), self.keep_only(~self.domain))

    def keep_only(self, kept: torch.Tensor) -> float:
        """The metric of the circuit made of the ``kept`` edges (every other edge ablated)."""
        return float(self.loss((~kept).float()))
