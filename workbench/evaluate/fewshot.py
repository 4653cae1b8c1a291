"""SST-2 and MRPC (2-shot, label-token logits; prompts of the paper's appendix F) and LAMBADA
(last-word greedy accuracy), through ``datasets`` when the hub is reachable or a local file.

When a set is unavailable (no local file given, hub off or failing) the result says
``unavailable: <reason>``; no stand-in data is ever used under these names. A local path that
names nothing or a file of an unknown format is an error instead (a typo, not a missing set).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from workbench.errors import WorkbenchError
from workbench.evaluate.generate import greedy

SST2_PROMPT = (
    "What is the sentiment in this review? The answer should be one word: either positive or negative.\n\n"
    "Review: the movie was absolutely incredible.\n\nAnswer: positive\n\n"
    "What is the sentiment in this review? The answer should be one word: either positive or negative.\n\n"
    "Review: this was a shameful waste of time.\n\nAnswer: negative\n\n"
    "What is the sentiment in this review? The answer should be one word: either positive or negative.\n\n"
    "Review: {sentence}\n\nAnswer:"
)
MRPC_PROMPT = (
    "Determine whether the following two sentences are paraphrases (i.e ., have the same meaning). "
    "Answer in one word: yes or no.\n\n"
    "Sentence 1: The company reported strong earnings this quarter.\n"
    "Sentence 2: The business announced impressive profits for the quarter.\nAnswer: yes\n\n"
    "Sentence 1: I love to read science fiction novels.\n"
    "Sentence 2: I prefer watching documentaries over reading books.\nAnswer: no\n\n"
    "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nAnswer:"
)
HUB = {"sst2": ("nyu-mll/glue", "sst2", "validation"), "mrpc": ("nyu-mll/glue", "mrpc", "validation"),
       "lambada": ("EleutherAI/lambada_openai", "default", "test")}


class Unavailable(Exception):
    pass


def load_rows(name: str, local: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """Rows of benchmark ``name`` from a local .jsonl / .csv / saved-dataset folder, else from the hub."""
    if local is not None:
        path = Path(local)
        if not path.exists():
            raise WorkbenchError(f"--{name} {path}: no such file or folder; fix the path or leave --{name} out")
        if path.is_file() and path.suffix not in (".jsonl", ".csv", ".tsv"):
            raise WorkbenchError(f"--{name} {path}: use a .jsonl, .csv or .tsv file or a saved datasets folder")
        rows = _local_rows(path)
    else:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise Unavailable(f"no local file given and the hub is off (HF_HUB_OFFLINE=1); pass --{name} PATH")
        try:
            from datasets import load_dataset

            repo, config, split = HUB[name]
            rows = list(load_dataset(repo, config, split=split))
        except Exception as error:  # noqa: BLE001 - every hub failure is reported the same way
            raise Unavailable(f"could not load {HUB[name][0]} from the hub ({type(error).__name__})") from error
    return rows[:limit] if limit else rows


def _local_rows(path: Path) -> list[dict]:
    if not path.exists():
        raise Unavailable(f"{path} does not exist")
    if path.is_dir():
        from datasets import load_from_disk

        return list(load_from_disk(str(path)))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix in (".csv", ".tsv"):
        import pandas as pd

        return pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",").to_dict("records")
    raise Unavailable(f"{path}: use a .jsonl, .csv, .tsv file or a saved datasets folder")


@torch.no_grad()
def _label_choice(model, tokenizer, prompts: list[str], labels: tuple[str, str]) -> list[int]:
    """Index of the label whose first token has the larger logit after each prompt."""
    ids = [tokenizer(" " + label, add_special_tokens=False)["input_ids"][0] for label in labels]
    device = next(model.parameters()).device
    choices = []
    for prompt in prompts:
        tokens = torch.tensor([tokenizer(prompt)["input_ids"]], device=device)
        logits = model(tokens)[0, -1]
        choices.append(int(logits[ids[1]] > logits[ids[0]]))
    return choices


def sst2_accuracy(model, tokenizer, rows: list[dict]) -> float:
    prompts = [SST2_PROMPT.format(sentence=r["sentence"].strip()) for r in rows]
    choices = _label_choice(model, tokenizer, prompts, ("negative", "positive"))
    return sum(c == int(r["label"]) for c, r in zip(choices, rows)) / len(rows)


def mrpc_accuracy(model, tokenizer, rows: list[dict]) -> float:
    prompts = [MRPC_PROMPT.format(sentence1=r["sentence1"].strip(), sentence2=r["sentence2"].strip()) for r in rows]
    choices = _label_choice(model, tokenizer, prompts, ("no", "yes"))
    return sum(c == int(r["label"]) for c, r in zip(choices, rows)) / len(rows)


def lambada_accuracy(model, tokenizer, rows: list[dict]) -> float:
    """Greedy decoding of the last word (all its tokens) after the rest of the passage."""
    correct = 0
    for row in rows:
        context, last = row["text"].rsplit(" ", 1)
        target = tokenizer(" " + last, add_special_tokens=False)["input_ids"]
        prompt = tokenizer(context, add_special_tokens=False)["input_ids"]
        correct += greedy(model, [prompt], len(target))[0] == target
    return correct / len(rows)


SCORERS = {"sst2": sst2_accuracy, "mrpc": mrpc_accuracy, "lambada": lambada_accuracy}


def evaluate_benchmarks(model, tokenizer, local: dict[str, str | None], limit: int | None = None
                        ) -> dict[str, float | str]:
    """{benchmark: accuracy, or the text "unavailable: <reason>"}."""
    results = {}
    for name, scorer in SCORERS.items():
        try:
            rows = load_rows(name, local.get(name), limit)
        except Unavailable as reason:
            results[name] = f"unavailable: {reason}"
            continue
        results[name] = scorer(model, tokenizer, rows)
    return results
