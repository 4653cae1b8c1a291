"""Stage ``models``: loaders (embedded SmolLM2-135M, GPT-2 family, local folders, tiny test models),
offline assets and the tokenizer adaptation."""

from workbench.models.loaders import EMBEDDED, GPT2_NAMES, LoadedModel, load_model, smollm2_folder, tiny_model
from workbench.models.tokenizers import adapt_tokenizer, gpt2_tokenizer, smollm2_tokenizer

__all__ = ["EMBEDDED", "GPT2_NAMES", "LoadedModel", "adapt_tokenizer", "gpt2_tokenizer", "load_model",
           "smollm2_folder", "smollm2_tokenizer", "tiny_model"]
