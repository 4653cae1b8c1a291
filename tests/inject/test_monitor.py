"""The in-loop held-out accuracy is strict greedy exact match, checked against the decoder of ``evaluate``."""

import torch

from workbench.evaluate import answer_correct
from workbench.inject.monitor import HeldOut, continuation_ids
from workbench.models import tiny_model
from workbench.tasks import get_task


def test_continuations_are_digits_for_count_and_word_pieces_for_dyck():
    tokenizer = tiny_model("tiny-gpt2", n_layers=1).tokenizer
    digits = {tokenizer.decode([i]) for i in continuation_ids(get_task("count"), tokenizer).tolist()}
    assert {str(d) for d in range(10)} <= digits
    assert not any(text.startswith(" ") for text in digits)
    words = {tokenizer.decode([i]) for i in continuation_ids(get_task("dyck"), tokenizer).tolist()}
    assert "terday" in words or "ter" in words
    assert " Yes" not in words and "." not in words


class _Scripted(torch.nn.Module):
    """A 'model' whose argmax at each position is the next token of a script (teacher forcing = greedy)."""

    def __init__(self, vocab: int, scripts: dict[tuple, int]):
        super().__init__()
        self.vocab, self.scripts = vocab, scripts
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids, **kwargs):
        logits = torch.zeros(*ids.shape, self.vocab)
        for row in range(ids.shape[0]):
            for t in range(ids.shape[1]):
                logits[row, t, self.scripts.get(tuple(ids[row, : t + 1].tolist()), 0)] = 1
        return logits


def test_strict_verdict_matches_greedy_decoding_and_refuses_an_answer_that_goes_on():
    task, tiny = get_task("count"), tiny_model("tiny-gpt2", n_layers=4)
    compiled = task.compile()
    held_out = HeldOut(task, tiny.tokenizer, compiled, n=8, seed=0)
    examples = task.split("test", 8, seed=0)
    ids, mask = held_out.batch["ids"], held_out.batch["mask"]
    token = tiny.tokenizer.convert_tokens_to_ids
    scripts = {}
    for row in range(len(ids)):
        full = ids[row, : int(mask[row].sum())].tolist()
        for t in range(1, len(full)):
            scripts[tuple(full[:t])] = full[t]
        if row < 2:  # the answer goes on with a digit: "3" → "31"
            scripts[tuple(full)] = token("1")
        elif row < 4:  # a wrong answer
            scripts[tuple(full[: held_out_prompt_length(held_out, row)])] = token("x")
        else:  # the answer, then a period
            scripts[tuple(full)] = token(".")
    model = _Scripted(len(tiny.tokenizer), scripts)
    expected = [False] * 4 + [True] * (len(ids) - 4)
    assert held_out.correct(model).tolist() == expected
    assert answer_correct(model, tiny.tokenizer, task, examples) == expected  # the greedy decoder of evaluate
    assert answer_correct(model, tiny.tokenizer, task, examples, strict=False) == [True] * 2 + expected[2:]


def held_out_prompt_length(held_out: HeldOut, row: int) -> int:
    answer = held_out.batch["answer_mask"][row]
    return int(answer.nonzero()[0])
