"""tracr compilation and the exact conversion to a TransformerLens ``HookedTransformer``.

The compiler's stages are run one by one (as ``tracr.compiler.compiling`` does) so that
the RASP graph and the craft model stay available to later stages (ground truth for
circuits), then the assembled haiku parameters are copied into a ``HookedTransformer``.

>>> from tracr.compiler import lib
>>> from tracr.rasp import rasp
>>> compiled = compile_program(lib.make_reverse(rasp.tokens), vocab={"a", "b", "c"}, max_seq_len=5)
>>> compiled.run(list("abc"))
['c', 'b', 'a']
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from typing import Any, Sequence

import haiku as hk
import jax
import numpy as np
import torch
from tracr.compiler import (
    assemble,
    basis_inference,
    craft_graph_to_model,
    craft_model_to_transformer,
    expr_to_craft_graph,
    nodes,
    rasp_to_graph,
    validating,
)
from tracr.craft import bases
from tracr.rasp import rasp
from transformer_lens import HookedTransformer, HookedTransformerConfig

from workbench.compiled.structure import Component, components_of
from workbench.errors import WorkbenchError
from workbench.padding import right_pad
from workbench.tracr_craft import COMPILER_BOS, COMPILER_PAD, fast_craft



@dataclasses.dataclass(frozen=True)
class ResidualDim:
    """One labelled direction of the compiled residual stream.

    ``value`` is ``None`` for a numerical variable (one dim holds the number) and for
    the constant ``one`` direction.
    """

    variable: str
    value: Any

    @property
    def label(self) -> str:
        return self.variable if self.value is None else f"{self.variable}:{self.value}"


@dataclasses.dataclass
class TracrArtifacts:
    """What the tracr compiler produced, kept for reference checks and ground truth."""

    assembled: assemble.AssembledTransformerModel
    graph: Any  # networkx.DiGraph of the RASP program with craft blocks attached
    craft_model: Any
    sink: dict
    sources: list


@dataclasses.dataclass
class CompiledModel:
    """A compiled RASP program as an exact ``HookedTransformer`` with a labelled residual basis.

    ``model(tokens)`` returns, per position, the output scores of the program: one column
    per output value for a categorical program (argmax = answer), one column holding the
    number for a numerical program.
    """

    model: HookedTransformer
    residual_dims: list[ResidualDim]
    input_vocab: list[Any]  # token id -> token, BOS and PAD included
    output_values: list[Any] | None  # output column -> value; None for a numerical output
    output_variable: str
    max_seq_len: int
    causal: bool
    bos: str = COMPILER_BOS
    pad: str = COMPILER_PAD
    components: list[Component] = dataclasses.field(default_factory=list)  # heads and MLPs, forward order
    tracr: TracrArtifacts | None = None  # absent when loaded from the disk cache

    # ---- the labelled basis -------------------------------------------------------
    @property
    def variables(self) -> list[str]:
        """Variable names in residual order (each once)."""
        return list(dict.fromkeys(d.variable for d in self.residual_dims))

    @property
    def residual_labels(self) -> list[str]:
        return [d.label for d in self.residual_dims]

    @property
    def n_layers(self) -> int:
        return self.model.cfg.n_layers

    @property
    def is_categorical(self) -> bool:
        return self.output_values is not None

    @property
    def vocab(self) -> list[Any]:
        """The program's input tokens (without the compiler's BOS and PAD)."""
        return [t for t in self.input_vocab if t not in (self.bos, self.pad)]

    def dims_of(self, variable: str) -> list[int]:
        """Residual indices of ``variable`` (raises with the list of variables if unknown)."""
        dims = [i for i, d in enumerate(self.residual_dims) if d.variable == variable]
        if not dims:
            raise WorkbenchError(f"unknown variable {variable!r}; the compiled residual has: {self.variables}")
        return dims

    def values_of(self, variable: str) -> list[Any]:
        return [self.residual_dims[i].value for i in self.dims_of(variable)]

    def is_numerical(self, variable: str) -> bool:
        return self.values_of(variable) == [None]

    # ---- input and output ---------------------------------------------------------
    def encode(self, tokens: Sequence[Any]) -> torch.Tensor:
        """Token ids ``[1, len(tokens) + 1]`` with the compiler's BOS prepended."""
        tokens = list(tokens)
        if tokens and tokens[0] == self.bos:
            tokens = tokens[1:]
        if len(tokens) > self.max_seq_len:
            raise WorkbenchError(
                f"input has {len(tokens)} tokens but the program was compiled for at most "
                f"max_seq_len={self.max_seq_len}; shorten the input or compile with a larger max_seq_len"
            )
        index = {t: i for i, t in enumerate(self.input_vocab)}
        ids = [index[self.bos]]
        for position, token in enumerate(tokens):
            try:
                known = token in index and token not in (self.bos, self.pad)
            except TypeError:  # unhashable (a list, a dict, ...): never a vocab token
                known = False
            if not known:
                raise WorkbenchError(
                    f"token {token!r} at position {position} is not in the compiled vocab {self.vocab!r}"
                )
            ids.append(index[token])
        return torch.tensor([ids], dtype=torch.long, device=self.model.cfg.device)

    def parse_input(self, text: str) -> list[Any]:
        """Split a command-line string into vocab tokens: on whitespace if it has any, else per character."""
        by_name = {str(t): t for t in self.vocab}
        if not text.strip():
            raise WorkbenchError(f"the input is empty; give at least one token of {sorted(map(str, self.vocab))}")
        pieces = text.split() if any(c.isspace() for c in text.strip()) else list(text.strip())
        unknown = [p for p in pieces if p not in by_name]
        if unknown:
            raise WorkbenchError(
                f"token {unknown[0]!r} is not in the compiled vocab {sorted(map(str, self.vocab))}"
            )
        return [by_name[p] for p in pieces]

    def decode_outputs(self, scores: torch.Tensor) -> list[Any]:
        """Program outputs for ``scores[pos, out]`` of one sequence (BOS position dropped).

        A categorical output whose one-hot is absent (best score below 0.5) decodes to
        ``None``: the program leaves it undefined there (e.g. ``shift_by`` at the first
        positions), where tracr's own argmax returns an arbitrary value.
        """
        scores = scores[1:]
        if self.output_values is None:
            return [float(v) for v in scores[:, 0].tolist()]
        best, index = scores.max(dim=-1)
        return [self.output_values[i] if b > 0.5 else None for b, i in zip(best.tolist(), index.tolist())]

    @torch.no_grad()
    def run(self, tokens: Sequence[Any]) -> list[Any]:
        """The program's output at each input position."""
        return self.decode_outputs(self.model(self.encode(tokens))[0])

    @torch.no_grad()
    def run_batch(self, token_lists: Sequence[Sequence[Any]], batch_size: int = 64) -> list[list[Any]]:
        """``run`` for many inputs at once (right-padded with PAD, so only for causal models)."""
        if not self.causal and len({len(t) for t in token_lists}) > 1:
            raise WorkbenchError("run_batch pads inputs of different lengths, which changes a bidirectional "
                                 "model's outputs; run them one at a time or group them by length")
        pad_id = self.input_vocab.index(self.pad)
        results = []
        for start in range(0, len(token_lists), batch_size):
            chunk = [self.encode(tokens)[0] for tokens in token_lists[start:start + batch_size]]
            scores = self.model(right_pad(chunk, pad_id, self.model.cfg.device))
            results += [self.decode_outputs(scores[row, :len(ids)]) for row, ids in enumerate(chunk)]
        return results

    @torch.no_grad()
    def residuals(self, tokens: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Residual stream ``[positions, d_model]`` at every layer, keyed by TransformerLens hook name."""
        _, cache = self.model.run_with_cache(self.encode(tokens), names_filter=lambda n: "hook_resid" in n)
        return {name: cache[name][0] for name in residual_hook_names(self.n_layers)}


def new_hooked_transformer(cfg: HookedTransformerConfig) -> HookedTransformer:
    """``HookedTransformer(cfg)`` without transformer-lens 3.9's deprecation notice (4.x drops the class; we pin 3.9)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="HookedTransformer is deprecated", category=DeprecationWarning)
        return HookedTransformer(cfg)


def residual_hook_names(n_layers: int) -> list[str]:
    """Hook names of the residual stream in order: embeddings, then after each attention and MLP."""
    names = ["blocks.0.hook_resid_pre"]
    for layer in range(n_layers):
        names += [f"blocks.{layer}.hook_resid_mid", f"blocks.{layer}.hook_resid_post"]
    return names


def compile_tracr(
    program: rasp.SOp,
    vocab: set,
    max_seq_len: int,
    causal: bool = False,
    compiler_bos: str = COMPILER_BOS,
    compiler_pad: str = COMPILER_PAD,
    mlp_exactness: int = 100,
    fast: bool = True,
) -> TracrArtifacts:
    """Run tracr's compiler stage by stage (same steps as ``compile_rasp_to_model``).

    ``fast`` runs tracr's craft stage without its O(d²)-per-vector loops (:func:`fast_craft`, same weights).
    """
    with fast_craft() if fast else contextlib.nullcontext():
        return _compile_tracr(program, vocab, max_seq_len, causal, compiler_bos, compiler_pad, mlp_exactness)


def _compile_tracr(program, vocab, max_seq_len, causal, compiler_bos, compiler_pad, mlp_exactness) -> TracrArtifacts:
    for special in (compiler_bos, compiler_pad):
        if special in vocab:
            raise WorkbenchError(f"the compiler token {special!r} must not be in the vocab {sorted(map(str, vocab))}")
    unsupported = validating.static_validate(program)
    if unsupported:
        reasons = "; ".join(f"{u.expr.name}: {u.reason}" for u in unsupported)
        raise WorkbenchError(f"tracr cannot compile this program: {reasons}")
    extracted = rasp_to_graph.extract_rasp_graph(program)
    graph, sources, sink = extracted.graph, extracted.sources, extracted.sink
    basis_inference.infer_bases(graph, sink, set(vocab), max_seq_len)
    expr_to_craft_graph.add_craft_components_to_rasp_graph(
        graph, bos_dir=bases.BasisDirection(rasp.tokens.label, compiler_bos), mlp_exactness=mlp_exactness
    )
    craft_model = craft_graph_to_model.craft_graph_to_model(graph, sources)
    assembled = craft_model_to_transformer.craft_model_to_transformer(
        craft_model=craft_model,
        graph=graph,
        sink=sink,
        max_seq_len=max_seq_len,
        causal=causal,
        compiler_bos=compiler_bos,
        compiler_pad=compiler_pad,
    )
    return TracrArtifacts(assembled=assembled, graph=graph, craft_model=craft_model, sink=sink, sources=sources)


def _residual_basis(artifacts: TracrArtifacts, max_seq_len: int) -> list[bases.BasisDirection]:
    """The residual basis in the assembled model's order (recomputed as ``assemble`` joins it)."""
    graph, sink = artifacts.graph, artifacts.sink
    tokens_space = bases.VectorSpaceWithBasis.from_values(
        rasp.tokens.label,
        graph.nodes[rasp.tokens.label][nodes.VALUE_SET].union({artifacts.assembled.input_encoder.bos_token,
                                                               artifacts.assembled.input_encoder.pad_token}),
    )
    indices_space = bases.VectorSpaceWithBasis.from_values(rasp.indices.label, range(max_seq_len))
    output_space = bases.VectorSpaceWithBasis(sink[nodes.OUTPUT_BASIS])
    space = bases.join_vector_spaces(artifacts.craft_model.residual_space, tokens_space, indices_space, output_space)
    basis = list(space.basis)
    if [str(b) for b in basis] != artifacts.assembled.residual_labels:
        raise RuntimeError("residual basis differs from tracr's residual labels; tracr version mismatch?")
    return basis


def _unembedding(assembled: assemble.AssembledTransformerModel, d_model: int) -> np.ndarray:
    """The compiled unembedding ``[d_model, n_outputs]``: tracr's unembed applied to the identity."""

    @hk.transform
    def unembed(x):
        return assembled.get_compiled_model().unembed(x, use_unembed_argmax=False)

    out = np.asarray(unembed.apply(assembled.params, jax.random.PRNGKey(0), np.eye(d_model, dtype=np.float32)))
    return out.reshape(d_model, -1)


def to_hooked_transformer(
    assembled: assemble.AssembledTransformerModel, causal: bool, dtype: torch.dtype = torch.float32
) -> HookedTransformer:
    """Copy tracr's assembled parameters into a ``HookedTransformer`` (exact, no layer norm)."""
    params = {k: {kk: np.asarray(vv) for kk, vv in v.items()} for k, v in assembled.params.items()}
    mc = assembled.model_config
    token_embed = params["token_embed"]["embeddings"]
    d_vocab, d_model = token_embed.shape
    w_unembed = _unembedding(assembled, d_model)
    cfg = HookedTransformerConfig(
        n_layers=mc.num_layers,
        d_model=d_model,
        d_head=mc.key_size,
        n_heads=mc.num_heads,
        d_mlp=mc.mlp_hidden_size,
        d_vocab=d_vocab,
        d_vocab_out=w_unembed.shape[1],
        n_ctx=params["pos_embed"]["embeddings"].shape[0],
        act_fn="relu",
        normalization_type=None,
        attention_dir="causal" if causal else "bidirectional",
        default_prepend_bos=False,
        dtype=dtype,
        device="cpu",
    )
    model = new_hooked_transformer(cfg)
    h, k = mc.num_heads, mc.key_size

    def heads_in(w):  # "d (h k) -> h d k"
        return w.reshape(d_model, h, k).transpose(1, 0, 2)

    state = {
        "embed.W_E": token_embed,
        "pos_embed.W_pos": params["pos_embed"]["embeddings"],
        "unembed.W_U": w_unembed,
        "unembed.b_U": np.zeros(w_unembed.shape[1]),
    }
    for layer in range(mc.num_layers):
        attn, mlp = f"transformer/layer_{layer}/attn", f"transformer/layer_{layer}/mlp"
        for tl_name, tracr_name in (("Q", "query"), ("K", "key"), ("V", "value")):
            state[f"blocks.{layer}.attn.W_{tl_name}"] = heads_in(params[f"{attn}/{tracr_name}"]["w"])
            state[f"blocks.{layer}.attn.b_{tl_name}"] = params[f"{attn}/{tracr_name}"]["b"].reshape(h, k)
        state[f"blocks.{layer}.attn.W_O"] = params[f"{attn}/linear"]["w"].reshape(h, k, d_model)
        state[f"blocks.{layer}.attn.b_O"] = params[f"{attn}/linear"]["b"]
        state[f"blocks.{layer}.mlp.W_in"] = params[f"{mlp}/linear_1"]["w"]
        state[f"blocks.{layer}.mlp.b_in"] = params[f"{mlp}/linear_1"]["b"]
        state[f"blocks.{layer}.mlp.W_out"] = params[f"{mlp}/linear_2"]["w"]
        state[f"blocks.{layer}.mlp.b_out"] = params[f"{mlp}/linear_2"]["b"]
    full = model.state_dict()
    for name, value in state.items():
        full[name] = torch.tensor(np.array(value), dtype=dtype)
    model.load_state_dict(full)
    model.eval()
    return model


def compile_program(
    program: rasp.SOp,
    vocab: set,
    max_seq_len: int,
    causal: bool = False,
    compiler_bos: str = COMPILER_BOS,
    compiler_pad: str = COMPILER_PAD,
    mlp_exactness: int = 100,
    fast: bool = True,
) -> CompiledModel:
    """Compile ``program`` with tracr and return it as an exact ``CompiledModel`` (no caching).

    Use :func:`workbench.compiled.load_or_compile` to cache the result on disk. ``fast=False``
    runs tracr's own (slower) construction of basis vectors; the weights are the same.
    """
    artifacts = compile_tracr(program, vocab, max_seq_len, causal, compiler_bos, compiler_pad, mlp_exactness, fast)
    assembled = artifacts.assembled
    basis = _residual_basis(artifacts, max_seq_len)
    encoder = assembled.input_encoder
    input_vocab = [None] * len(encoder.encoding_map)
    for token, index in encoder.encoding_map.items():
        input_vocab[index] = token
    output_values = (
        [value for value, _ in sorted(assembled.output_encoder.encoding_map.items(), key=lambda kv: kv[1])]
        if rasp.is_categorical(artifacts.sink[nodes.EXPR]) else None
    )
    return CompiledModel(
        model=to_hooked_transformer(assembled, causal),
        residual_dims=[ResidualDim(b.name, b.value) for b in basis],
        input_vocab=input_vocab,
        output_values=output_values,
        output_variable=artifacts.sink[nodes.ID],
        max_seq_len=max_seq_len,
        causal=causal,
        bos=compiler_bos,
        pad=compiler_pad,
        components=components_of(artifacts),
        tracr=artifacts,
    )
