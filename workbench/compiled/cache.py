"""Disk cache of compiled models, keyed by program + compile arguments.

An entry is a folder ``<cache>/<key>/`` with ``model.safetensors`` (HookedTransformer
weights) and ``meta.json`` (config, residual basis, vocab, output values, versions).
Entries written by another tracr / transformer-lens / cache format are *stale* and an
unreadable entry is *corrupt*: both are reported and recompiled, never trusted.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformerConfig

from workbench.fsutil import atomic_folder
from workbench.compiled.bridge import CompiledModel, ResidualDim, new_hooked_transformer
from workbench.compiled.structure import Component

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # 2: components (the compiled program's structure)


def cache_dir() -> Path:
    """``$WORKBENCH_CACHE/compiled`` or ``~/.cache/workbench/compiled``."""
    root = os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "workbench"
    return Path(root) / "compiled"


def _versions() -> dict[str, Any]:
    return {
        "cache_format": CACHE_FORMAT,
        "tracr": importlib.metadata.version("tracr-pypi"),
        "transformer_lens": importlib.metadata.version("transformer-lens"),
    }


def cache_key(spec: dict) -> str:
    """Stable hash of a JSON-able description of the program and its compile arguments."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=repr).encode()).hexdigest()[:20]


def _value_to_json(value: Any) -> str:
    """``repr`` of a plain Python value (numpy scalars converted), read back by ``literal_eval``."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, tuple):
        return repr(tuple(v.item() if hasattr(v, "item") else v for v in value))
    return repr(value)


def _value_from_json(text: str) -> Any:
    return ast.literal_eval(text)


def save(compiled: CompiledModel, folder: Path, spec: dict) -> None:
    """Write ``compiled`` to ``folder`` atomically (a temporary folder renamed into place)."""
    with atomic_folder(folder) as tmp:
        save_file({k: v.contiguous() for k, v in compiled.model.state_dict().items()}, tmp / "model.safetensors")
        meta = {
            **_versions(),
            "spec": json.loads(json.dumps(spec, default=repr)),
            "tl_config": {
                k: getattr(compiled.model.cfg, k)
                for k in ("n_layers", "d_model", "d_head", "n_heads", "d_mlp", "d_vocab", "d_vocab_out", "n_ctx",
                          "attention_dir")
            },
            "residual_dims": [[d.variable, _value_to_json(d.value)] for d in compiled.residual_dims],
            "input_vocab": [_value_to_json(t) for t in compiled.input_vocab],
            "output_values": None if compiled.output_values is None else [_value_to_json(v) for v in compiled.output_values],
            "output_variable": compiled.output_variable,
            "max_seq_len": compiled.max_seq_len,
            "causal": compiled.causal,
            "bos": compiled.bos,
            "pad": compiled.pad,
            "components": [c.to_json() for c in compiled.components],
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))


class StaleCache(Exception):
    pass


def load(folder: Path) -> CompiledModel:
    """Read a cache entry; raises ``StaleCache`` if it was written by other versions."""
    meta = json.loads((folder / "meta.json").read_text())
    expected = _versions()
    found = {k: meta.get(k) for k in expected}
    if found != expected:
        raise StaleCache(f"written with {found}, this install has {expected}")
    tl = meta["tl_config"]
    cfg = HookedTransformerConfig(
        **tl, act_fn="relu", normalization_type=None, default_prepend_bos=False, dtype=torch.float32, device="cpu"
    )
    model = new_hooked_transformer(cfg)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.eval()
    return CompiledModel(
        model=model,
        residual_dims=[ResidualDim(name, _value_from_json(value)) for name, value in meta["residual_dims"]],
        input_vocab=[_value_from_json(t) for t in meta["input_vocab"]],
        output_values=None if meta["output_values"] is None else [_value_from_json(v) for v in meta["output_values"]],
        output_variable=meta["output_variable"],
        max_seq_len=meta["max_seq_len"],
        causal=meta["causal"],
        bos=meta["bos"],
        pad=meta["pad"],
        components=[Component.from_json(c) for c in meta["components"]],
    )


def load_or_compile(spec: dict, compile_fn: Callable[[], CompiledModel], use_cache: bool = True) -> CompiledModel:
    """Return the cached model for ``spec`` or call ``compile_fn`` and cache its result.

    ``spec`` must describe everything the compiled weights depend on (program name and
    arguments, vocab, max_seq_len, causal, compiler tokens).
    """
    if not use_cache:
        return compile_fn()
    folder = cache_dir() / cache_key(spec)
    if (folder / "meta.json").exists():
        try:
            return load(folder)
        except StaleCache as stale:
            log.warning("compiled-model cache entry %s is stale (%s); recompiling", folder, stale)
        except Exception as error:  # noqa: BLE001 - any unreadable entry is recompiled, never trusted
            log.warning("compiled-model cache entry %s is unreadable (%s: %s); recompiling",
                        folder, type(error).__name__, error)
    compiled = compile_fn()
    try:
        save(compiled, folder, spec)
    except OSError as error:
        log.warning("could not write the compiled-model cache at %s (%s); continuing without it", folder, error)
    return compiled
