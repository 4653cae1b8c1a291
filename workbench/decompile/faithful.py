"""Compile a generated program to tracr's craft model and keep it only if it computes the program.

The thesis compiled every program and kept it unchecked; here the craft model (the compiled
blocks, before assembling: tracr's assembler fails when a value matrix is wider than the
query/key one, thesis §6.1) is run in numpy on random inputs and its output compared with RASP's
own evaluation, causal or bidirectional. Categorical Aggregates over selectors of width > 1
(RASP takes the mean, the compiled head mixes one-hots) are the main unfaithful case.

Compiling can take minutes or exhaust memory on a few programs (large value sets make large
MLPs). :class:`CompileWorker` compiles in a child process: the parent kills the child once it
has used ``timeout_s`` of CPU time (read from /proc, so that a busy machine rejects the same
programs as an idle one; wall time where there is no /proc, and a wall-clock cap of
``wall_factor × timeout_s`` for a child that gets no CPU), and the child's address space is capped at
``memory_mb`` more than it holds when it starts (``RLIMIT_AS``), so a runaway allocation fails
there as a MemoryError. Children
fork from a forkserver that has imported tracr once, so a restart after a kill costs
milliseconds, not a JAX import. (Ray has no task timeout; this is how the zoo enforces one.)

>>> from workbench.decompile.program import Line, Program
>>> p = Program(["a", "b"], 4, [Line("Select", "PRED_EQ", ("tokens", "tokens"), "s"),
...                            Line("SelectorWidth", None, ("s",), "w")])
>>> result = compile_and_check(p, n_inputs=8, seed=0)
>>> result.status, result.layer_types
('ok', ['HEAD', 'MLP'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import resource
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.decompile.program import Program
from workbench.decompile.weights import n_weight_tokens
from workbench.tracr_craft import COMPILER_BOS, fast_craft

MLP_EXACTNESS = 100
REASONS = ("timeout", "memory", "compile_error", "unfaithful", "too_many_weight_tokens")
_PRELOAD = ["tracr.compiler.basis_inference", "tracr.compiler.craft_graph_to_model",
            "tracr.compiler.expr_to_craft_graph", "tracr.compiler.rasp_to_graph", "tracr.compiler.validating",
            "workbench.decompile.faithful"]


@dataclasses.dataclass
class CompileResult:
    """``status`` "ok" or a rejection reason; for "ok" the craft weights in forward order.

    ``weights``: (kind, matrix) with kind w_qk / w_ov per head and fst / snd per MLP;
    ``layer_types``: HEAD per attention head, MLP per MLP block (the thesis's architecture).
    """

    status: str
    detail: str = ""
    weights: list[tuple[str, np.ndarray]] = dataclasses.field(default_factory=list)
    layer_types: list[str] = dataclasses.field(default_factory=list)
    n_layers: int = 0
    residual_width: int = 0
    seconds: float = 0.0  # wall time, as the caller waited for it
    cpu_seconds: float = 0.0  # CPU time of the compiling process (0 for a timeout: the child was killed)


def compile_craft(program: Program, causal: bool = False):
    """tracr's compiler up to the craft model: (craft_model, output basis). Raises on what tracr cannot compile."""
    from tracr.compiler import basis_inference, craft_graph_to_model, expr_to_craft_graph, nodes, rasp_to_graph
    from tracr.compiler import validating
    from tracr.craft import bases, transformers
    from tracr.rasp import rasp

    expr = program.to_rasp()
    unsupported = validating.static_validate(expr)
    if unsupported:
        raise NotImplementedError("; ".join(f"{u.expr.name}: {u.reason}" for u in unsupported))
    with fast_craft():
        extracted = rasp_to_graph.extract_rasp_graph(expr)
        basis_inference.infer_bases(extracted.graph, extracted.sink, set(program.vocab), program.max_seq_len)
        expr_to_craft_graph.add_craft_components_to_rasp_graph(
            extracted.graph, bos_dir=bases.BasisDirection(rasp.tokens.label, COMPILER_BOS), causal=causal,
            mlp_exactness=MLP_EXACTNESS)
        craft_model = craft_graph_to_model.craft_graph_to_model(extracted.graph, extracted.sources)
    if causal:  # tracr leaves selector width's head bidirectional; the assembled causal model masks every head
        for block in craft_model.blocks:
            for head in ([] if isinstance(block, transformers.MLP) else block.as_multi().heads()):
                head.causal = True
    return craft_model, list(extracted.sink[nodes.OUTPUT_BASIS])


def craft_outputs(craft_model, output_basis, tokens: Sequence[Any]) -> list[Any]:
    """Run the craft model on ``tokens`` (BOS prepended, as the assembled model embeds them); decoded outputs.

    A position whose output one-hot is absent (best score below 0.5) decodes to None, as RASP's
    evaluation gives None where an Aggregate selects nothing.
    """
    return CraftForward(craft_model, output_basis)(tokens)


class CraftForward:
    """tracr's ``craft_model.apply`` with its index bookkeeping done once per model: the same float64
    operations on the same operands, in the same order, where tracr multiplies by 0/1 projection
    matrices it rebuilds per call this gathers and scatters columns (exact: a product with a 0/1
    matrix adds only zeros). Ten times faster, so checking a model on 16 inputs no longer costs more
    than compiling it; equal to tracr's ``apply`` bit for bit (tests/decompile/test_faithful.py)."""

    def __init__(self, craft_model, output_basis):
        space = craft_model.residual_space
        self.index = space.index_by_direction
        self.blocks = [self._plan(block) for block in craft_model.blocks]
        self.output_basis = output_basis
        self.outputs = [self.index.get(d) for d in output_basis]

    def _plan(self, block) -> tuple:
        from tracr.craft import transformers

        local = block.residual_space.index_by_direction
        columns = [self.index[d] for d in block.residual_space.basis]
        if isinstance(block, transformers.MLP):  # its output is labelled by its residual basis
            return ("mlp", columns, [local[d] for d in block.fst.input_space.basis], block.fst.matrix,
                    block.snd.matrix, [local[d] for d in block.snd.output_space.basis], len(local), columns)
        # tracr labels a head's output by the sorted basis (a space's basis is sorted, so the same columns)
        return ("attention", columns, self._heads(block.as_multi(), local), len(local),
                [self.index[d] for d in sorted(block.residual_space.basis)])

    def _heads(self, multi, local) -> list:
        from tracr.craft import transformers

        plans = []
        for sub in multi.sub_blocks:
            if isinstance(sub, transformers.MultiAttentionHead):
                plans.append(("multi", self._heads(sub, local)))
                continue
            plans.append(("head", [local[d] for d in sub.w_qk.left_space.basis], sub.w_qk.matrix,
                          [local[d] for d in sub.w_qk.right_space.basis], sub.causal,
                          [local[d] for d in sub.w_ov.input_space.basis], sub.w_ov.matrix,
                          [local[d] for d in sub.w_ov.output_space.basis]))
        return plans

    @staticmethod
    def _attend(plans, x: np.ndarray, width: int) -> np.ndarray:
        outs = []
        for plan in plans:
            if plan[0] == "multi":
                outs.append(CraftForward._attend(plan[1], x, width))
                continue
            _, left, w_qk, right, causal, ov_in, w_ov, ov_out = plan
            scores = _columns(x, left) @ w_qk @ _columns(x, right).T
            if causal:
                scores = scores + np.triu(np.full_like(scores, -np.inf), 1)
            top = np.max(scores, axis=-1, keepdims=True)
            weights = np.exp(scores - top) / np.sum(np.exp(scores - top), axis=-1, keepdims=True)
            values = np.zeros((x.shape[0], width))
            values[:, ov_out] = _columns(x, ov_in) @ w_ov
            outs.append(weights @ values)
        return np.sum(outs, axis=0)

    def residual(self, tokens: Sequence[Any]) -> np.ndarray:
        """The residual stream after the last block, [1 + len(tokens), residual width] (BOS first)."""
        x = craft_input(self.index, tokens)
        for plan in self.blocks:
            x_in = _columns(x, plan[1])
            out = np.zeros_like(x)
            if plan[0] == "mlp":
                _, _, fst_in, fst, snd, snd_out, width, labels = plan
                hidden = _columns(x_in, fst_in) @ fst
                local = np.zeros((x.shape[0], width))
                local[:, snd_out] = np.where(hidden > 0, hidden, 0) @ snd
            else:
                _, _, heads, width, labels = plan
                local = self._attend(heads, x_in, width)
            out[:, labels] = local
            x = x + out
        return x

    def __call__(self, tokens: Sequence[Any]) -> list[Any]:
        x = self.residual(tokens)
        scores = np.zeros((x.shape[0] - 1, len(self.outputs)))
        for column, position in enumerate(self.outputs):
            if position is not None:
                scores[:, column] = x[1:, position]
        best = scores.argmax(axis=1)
        return [self.output_basis[b].value if scores[i, b] > 0.5 else None for i, b in enumerate(best)]


def craft_input(index: dict, tokens: Sequence[Any]) -> np.ndarray:
    """The rows the assembled model embeds, in the residual basis ``index`` (direction → column):
    BOS with ``one``, then each token with its position."""
    from tracr.craft import bases

    x = np.zeros((len(tokens) + 1, len(index)))
    for row, (token, position) in enumerate([(COMPILER_BOS, None), *((t, i) for i, t in enumerate(tokens))]):
        for direction in (bases.BasisDirection("one"), bases.BasisDirection("tokens", token),
                          None if position is None else bases.BasisDirection("indices", position)):
            if direction is not None and direction in index:
                x[row, index[direction]] = 1.0
    return x


def _columns(x: np.ndarray, columns: list[int]) -> np.ndarray:
    """``x[:, columns]`` in C order, as tracr's projections leave it: BLAS sums a product of an F-ordered
    operand in another order, and the last bit would differ."""
    return np.ascontiguousarray(x[:, columns])


def random_inputs(program: Program, n: int, seed: int) -> list[list[Any]]:
    """``n`` inputs, lengths 1..max_seq_len (the full length always among them), tokens uniform over the vocab."""
    rng = np.random.default_rng(seed)
    lengths = [program.max_seq_len] + [int(rng.integers(1, program.max_seq_len + 1)) for _ in range(n - 1)]
    return [[program.vocab[int(i)] for i in rng.integers(len(program.vocab), size=length)] for length in lengths]


def _same(a, b) -> bool:
    return (a is None) == (b is None) and (a is None or a == b)


def weights_of(craft_model) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """Craft-level parameters in forward order (thesis §5.1.2): per head w_qk then w_ov, per MLP fst then snd."""
    from tracr.craft import transformers

    weights, layer_types = [], []
    for block in craft_model.blocks:
        if isinstance(block, transformers.MLP):
            weights += [("fst", np.asarray(block.fst.matrix)), ("snd", np.asarray(block.snd.matrix))]
            layer_types.append("MLP")
        else:
            for head in block.as_multi().heads():
                weights += [("w_qk", np.asarray(head.w_qk.matrix)), ("w_ov", np.asarray(head.w_ov.matrix))]
                layer_types.append("HEAD")
    return weights, layer_types


def _n_layers(craft_model) -> int:
    """Assembled layers (one attention + one MLP sublayer each), as ``assemble`` allocates the blocks."""
    from tracr.craft import transformers

    half = 0
    for block in craft_model.blocks:
        is_mlp = isinstance(block, transformers.MLP)
        if half % 2 != is_mlp:
            half += 1
        half += 1
    return (half + 1) // 2


def compile_and_check(program: Program, causal: bool = False, n_inputs: int = 16, seed: int = 0,
                      max_weight_tokens: int = 0) -> CompileResult:
    """Compile (in this process) and compare with RASP on ``n_inputs`` random inputs.

    ``max_weight_tokens`` (0: no limit) rejects a model whose weight encoding would be longer,
    before the (then useless) faithfulness check.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = _compile_and_check(program, causal, n_inputs, seed, max_weight_tokens, start)
    result.cpu_seconds = time.process_time() - cpu
    return result


def _compile_and_check(program, causal, n_inputs, seed, max_weight_tokens, start) -> CompileResult:
    def rejected(status: str, detail: str) -> CompileResult:
        return CompileResult(status, detail[:300], seconds=time.perf_counter() - start)

    # Cheapest check first: a third of the thesis-setting draws have an input RASP cannot evaluate,
    # and for those compiling (most of the time) would be wasted.
    inputs, expected = random_inputs(program, n_inputs, seed), []
    try:
        for tokens in inputs:
            expected.append(program.outcome(tokens, causal=causal))
            if isinstance(expected[-1], str):
                return rejected("unfaithful", f"input {tokens}: RASP {expected[-1]}")
    except Exception as error:  # a value RASP cannot evaluate (e.g. a mean of strings) is not a usable program
        return rejected("unfaithful", f"{type(error).__name__}: {error}")
    try:
        craft_model, output_basis = compile_craft(program, causal)
    except MemoryError as error:
        return rejected("memory", str(error))
    except Exception as error:  # tracr raises many types (NotImplementedError, ValueError, KeyError, ...)
        return rejected("compile_error", f"{type(error).__name__}: {error}")
    weights, layer_types = weights_of(craft_model)
    n_tokens = n_weight_tokens([w.size for _, w in weights])
    if max_weight_tokens and n_tokens > max_weight_tokens:
        return rejected("too_many_weight_tokens", f"{n_tokens} weight tokens > {max_weight_tokens}")
    forward = CraftForward(craft_model, output_basis)
    try:
        for tokens, want in zip(inputs, expected):
            got = forward(tokens)
            if not all(_same(e, g) for e, g in zip(want, got)):
                return rejected("unfaithful", f"input {tokens}: RASP {want}, compiled {got}")
    except MemoryError as error:
        return rejected("memory", str(error))
    except Exception as error:  # the craft model failing on an input the program evaluates
        return rejected("unfaithful", f"input {tokens}: compiled model failed, {type(error).__name__}: {error}")
    return CompileResult("ok", "", weights, layer_types, _n_layers(craft_model),
                         craft_model.residual_space.num_dims, time.perf_counter() - start)


def _address_space() -> int:
    """This process's address space in bytes (VmSize), 0 where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child(connection, memory_mb: int) -> None:
    if memory_mb:  # on top of what the process holds already (imports, BLAS thread buffers: more with more cores)
        limit = _address_space() + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    connection.send("ready")  # the child has imported the parent's main script: its CPU time is not a program's
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        text, causal, n_inputs, seed, max_weight_tokens = request
        try:
            result = compile_and_check(Program.from_json(text), causal, n_inputs, seed, max_weight_tokens)
        except MemoryError as error:
            result = CompileResult("memory", str(error)[:200])
        except Exception:  # never let the child die silently: the parent would read it as a timeout
            result = CompileResult("compile_error", traceback.format_exc(limit=2)[-300:])
        try:
            connection.send(result)
        except MemoryError:
            connection.send(CompileResult("memory", "result too large to send"))


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process from /proc; None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15 of stat)


class CompileWorker:
    """Compiles programs one at a time in a child process, with a per-program timeout and memory cap.

    The child and the parent exchange a program's JSON and a :class:`CompileResult` over a pipe
    (an internal channel between two processes of this run; nothing is written to disk).
    """

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 4096, wall_factor: float = 20.0):
        self.timeout_s, self.memory_mb, self.wall_factor = timeout_s, memory_mb, wall_factor
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._process = None
        self._connection = None

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=_child, args=(child, self.memory_mb), daemon=True)
        self._process.start()
        child.close()
        # A child imports the parent's ``__main__`` before it runs (forkserver, like spawn); a script that
        # imports torch at the top would spend seconds of the first program's CPU budget there.
        if parent.recv() != "ready":
            raise RuntimeError("the compile worker's child did not start")
        self._connection = parent

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._connection.close()
        self._process = self._connection = None

    def compile(self, program: Program, causal: bool = False, n_inputs: int = 16, seed: int = 0,
                max_weight_tokens: int = 0) -> CompileResult:
        if self._process is None or not self._process.is_alive():
            self._kill()
            self._start()
        start = time.perf_counter()
        cpu_start = _cpu_seconds(self._process.pid)
        self._connection.send((program.to_json(), causal, n_inputs, seed, max_weight_tokens))
        try:
            while not self._connection.poll(min(0.05, self.timeout_s)):
                used = _cpu_seconds(self._process.pid)
                waited = time.perf_counter() - start
                # the budget is the child's CPU time (the same programs pass on a busy machine), with a
                # wall-clock cap for a child that gets no CPU at all; wall time where /proc is missing
                over = (used - cpu_start > self.timeout_s) if used is not None else waited > self.timeout_s
                if over or waited > self.wall_factor * self.timeout_s:
                    self._kill()
                    return CompileResult("timeout", f"over {self.timeout_s:g} s", seconds=waited)
            result = self._connection.recv()
        except (EOFError, OSError):  # the child died (killed by the OS for memory, or crashed)
            self._kill()
            return CompileResult("memory", "the compiling process died", seconds=time.perf_counter() - start)
        return result

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._connection.send(None)
            self._process.join(timeout=5)
        self._kill()

    def __enter__(self) -> "CompileWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
