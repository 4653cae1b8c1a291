"""The evaluator against independent counts and hand computations."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from workbench import WorkbenchError
from workbench.align import align
from workbench.evaluate import (answer_correct, answer_tokens, compiled_correct, greedy, greedy_one_at_a_time,
                                teacher_forced_correct)
from workbench.evaluate.accuracy import greedy_verdicts
from workbench.evaluate.fewshot import evaluate_benchmarks, sst2_accuracy, SST2_PROMPT
from workbench.evaluate.perplexity import perplexity
from workbench.models import adapt_tokenizer, gpt2_tokenizer, load_model
from workbench.tasks import get_task


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-gpt2", n_layers=2, device="cpu")


class CompiledSumAsLM(torch.nn.Module):
    """An LM whose greedy answers are the compiled sum program's: known answers to evaluate."""

    def __init__(self, tokenizer):
        super().__init__()
        self.task, self.tokenizer = get_task("sum"), tokenizer
        self.compiled = self.task.compile()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.vocab = len(tokenizer)

    def forward(self, ids):
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.vocab)
        for row in range(ids.shape[0]):
            texts = [self.tokenizer.decode([i]) for i in ids[row].tolist()]
            view = [self.task.filler_token] + [self.task.checked_compiled_token(t) for t in texts[1:]]
            outputs = self.compiled.run(view)
            for position, value in enumerate(outputs):
                if isinstance(value, str) and value.isdigit():
                    text = (" " if texts[position].strip() == "=" else "") + value
                    token = self.tokenizer(text, add_special_tokens=False)["input_ids"][0]
                else:
                    token = self.tokenizer.eos_token_id
                logits[row, position, token] = 1.0
        return logits


def test_accuracy_equals_an_independent_count_on_a_model_with_known_answers():
    tokenizer = adapt_tokenizer(gpt2_tokenizer())
    lm = CompiledSumAsLM(tokenizer)
    task = lm.task
    examples = task.suite("cascading_overflow", 12) + task.suite("four_digits", 8) + task.suite("decimals", 5)
    expected = compiled_correct(task, lm.compiled, tokenizer, examples)  # independent: compiled answer vs label
    assert sum(expected) == 12  # cascading solved, 4-digit and decimals not
    assert answer_correct(lm, tokenizer, task, examples) == expected
    assert teacher_forced_correct(lm, tokenizer, task, examples) == expected


def test_batched_kv_cache_greedy_equals_one_at_a_time(tiny):
    task = get_task("count")
    prompts = [align(task, e, tiny.tokenizer).model_ids[:-2] for e in task.split("test", 12)]
    assert greedy(tiny.model, prompts, 4, batch_size=5) == greedy_one_at_a_time(tiny.model, prompts, 4)
    examples = task.split("test", 12)
    assert answer_correct(tiny.model, tiny.tokenizer, task, examples) == \
        teacher_forced_correct(tiny.model, tiny.tokenizer, task, examples)


class ScriptedLM(torch.nn.Module):
    """Greedily emits ``script[previous token]`` (EOS where the script is silent)."""

    def __init__(self, tokenizer, script):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.vocab, self.eos = len(tokenizer), tokenizer.eos_token_id
        self.script = {tokenizer(k, add_special_tokens=False)["input_ids"][-1]:
                       tokenizer(v, add_special_tokens=False)["input_ids"][0] for k, v in script.items()}

    def forward(self, ids):
        logits = torch.zeros(ids.shape[0], ids.shape[1], self.vocab)
        for row in range(ids.shape[0]):
            for position, token in enumerate(ids[row].tolist()):
                logits[row, position, self.script.get(token, self.eos)] = 1.0
        return logits


@pytest.mark.parametrize("task_name, question, answer, after, strict", [
    ("count", "x x x y y", " 3", "1", False),  # " 31": lenient passes it, strict does not
    ("count", "x x x y y", " 3", "\n", True),
    ("count", "x x x y y", " 3", ".", True),  # a period ends a count
    ("sum", (2, 1), " 3", ".", False),  # but continues a sum: "3.5"
    ("dyck", "[]{()}", " Yes", "terday", False),
    ("dyck", "[]{()}", " Yes", ".", True),
])
def test_strict_exact_match_needs_the_answer_to_end(task_name, question, answer, after, strict):
    tokenizer = adapt_tokenizer(gpt2_tokenizer())
    task = get_task(task_name)
    example = task.make(*question) if task_name == "sum" else task.make(question.split() if task_name == "count"
                                                                       else question)
    assert example.answer == answer
    lm = ScriptedLM(tokenizer, {":": answer, " =": answer, answer: after})
    assert answer_correct(lm, tokenizer, task, [example], strict=False) == [True]
    assert answer_correct(lm, tokenizer, task, [example]) == [strict]  # strict is the default
    assert teacher_forced_correct(lm, tokenizer, task, [example], strict=False) == [True]
    assert teacher_forced_correct(lm, tokenizer, task, [example]) == [strict]
    assert greedy_verdicts(lm, tokenizer, task, [example]) == ([strict], [True])


class ForcedAnswers(torch.nn.Module):
    """A random model told the answer of some prompts: there the answer tokens win by a margin, and
    the token after the answer is the random model's own choice among a few candidates, some
    continuing the answer (digits) and some ending it (digits after a space)."""

    def __init__(self, base, alignments, forced, candidates):
        super().__init__()
        self.base, self.candidates = base, candidates
        self.by_prompt = {tuple(a.model_ids[: a.n_prompt]): (a, f) for a, f in zip(alignments, forced)}

    def forward(self, ids):
        logits = self.base(ids).clone()
        for row in range(ids.shape[0]):
            sequence = tuple(ids[row].tolist())
            a, forced = next(v for k, v in self.by_prompt.items() if sequence[: len(k)] == k)
            if forced:
                for position in range(a.n_prompt - 1, min(len(a) - 1, len(sequence))):
                    logits[row, position, a.model_ids[position + 1]] += 1e4
            if len(a) - 1 < len(sequence):
                mask = torch.full((logits.shape[-1],), -1e9)
                mask[self.candidates] = 0.0
                logits[row, len(a) - 1] += mask
        return logits


def test_teacher_forced_strict_equals_greedy_strict_on_a_tiny_random_model(tiny):
    task, tokenizer = get_task("count"), tiny.tokenizer
    examples = task.split("test", 40)
    alignments = [align(task, e, tokenizer) for e in examples]
    candidates = [tokenizer(t, add_special_tokens=False)["input_ids"][0]
                  for d in "0123456789" for t in (d, " " + d)]  # "31" continues the answer 3, "3 1" ends it
    lm = ForcedAnswers(tiny.model, alignments, [i % 4 != 0 for i in range(len(examples))], candidates)
    strict, lenient = greedy_verdicts(lm, tokenizer, task, examples, batch_size=7)
    assert strict == teacher_forced_correct(lm, tokenizer, task, examples, batch_size=6)
    assert lenient == teacher_forced_correct(lm, tokenizer, task, examples, strict=False)
    assert lenient == [i % 4 != 0 for i in range(len(examples))]
    assert all(l or not s for s, l in zip(strict, lenient))
    assert 0 < sum(strict) < sum(lenient)  # the random model continues some answers and ends others


def test_perplexity_matches_a_hand_computation(tiny):
    lines = ["To be, or not to be, that is the question:", "Whether 'tis nobler in the mind to suffer"]
    result = perplexity(tiny.model, tiny.tokenizer, lines, batch_size=2)
    per_line, total_nll, total_tokens = [], 0.0, 0
    for line in lines:
        ids = [tiny.tokenizer.bos_token_id] + tiny.tokenizer(line)["input_ids"]
        with torch.no_grad():
            log_probs = F.log_softmax(tiny.model(torch.tensor([ids]))[0], dim=-1)
        nll = -sum(float(log_probs[i, ids[i + 1]]) for i in range(len(ids) - 1))
        per_line.append(math.exp(nll / (len(ids) - 1)))
        total_nll, total_tokens = total_nll + nll, total_tokens + len(ids) - 1
    assert result["per_line_ppl"] == pytest.approx(sum(per_line) / 2, rel=1e-5)
    assert result["token_ppl"] == pytest.approx(math.exp(total_nll / total_tokens), rel=1e-5)
    assert result["tokens"] == total_tokens


def test_unavailable_benchmarks_are_reported_not_faked(tiny, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    results = evaluate_benchmarks(tiny.model, tiny.tokenizer, {})
    assert set(results) == {"sst2", "mrpc", "lambada"}
    assert all(v.startswith("unavailable: ") and "HF_HUB_OFFLINE" in v for v in results.values())


def test_local_sst2_file_is_scored_by_label_logits(tiny, tmp_path):
    rows = [{"sentence": "a gorgeous, witty film", "label": 1}, {"sentence": "dull and lifeless", "label": 0},
            {"sentence": "an utter mess", "label": 0}]
    path = tmp_path / "sst2_fixture.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = evaluate_benchmarks(tiny.model, tiny.tokenizer, {"sst2": str(path)}, None)
    neg, pos = (tiny.tokenizer(" " + w)["input_ids"][0] for w in ("negative", "positive"))
    hits = 0
    for row in rows:
        ids = torch.tensor([tiny.tokenizer(SST2_PROMPT.format(sentence=row["sentence"]))["input_ids"]])
        with torch.no_grad():
            last = tiny.model(ids)[0, -1]
        hits += int(last[pos] > last[neg]) == row["label"]
    assert result["sst2"] == pytest.approx(hits / 3)
    assert sst2_accuracy(tiny.model, tiny.tokenizer, rows) == pytest.approx(hits / 3)


def test_bad_run_folder_is_a_clear_error(tmp_path):
    from workbench.cli import main

    assert main(["eval", str(tmp_path)]) == 2
    with pytest.raises(WorkbenchError, match="is not a run folder"):
        from workbench.evaluate.runs import load_run
        load_run(tmp_path)


def test_eval_command_writes_the_tables(tmp_path, capsys, monkeypatch):
    from workbench.cli import main
    from workbench.inject.config import InjectionConfig
    from workbench.inject.trainer import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = tmp_path / "run"
    train(InjectionConfig(task="count", model="tiny-gpt2", tiny_layers=4, steps=2, task_batch=2, text_batch=2,
                          text_tokens=16, train_pool=50, checkpoint_every=2), run, progress=False)
    assert main(["eval", str(run), "--n", "6", "--ppl-lines", "4", "--suites", "x_only,y_to_z"]) == 0
    out = capsys.readouterr().out
    assert "unavailable: " in out and "perplexity per line" in out
    table = (run / "eval" / "accuracy.csv").read_text().splitlines()
    assert table[0].startswith(
        "task,set,compiled_supports,prompts,model_accuracy,model_accuracy_lenient,compiled_accuracy")
    assert [line.split(",")[1] for line in table[1:]] == ["test", "x_only", "y_to_z"]
    assert all(line.split(",")[6] == "1.0" for line in table[1:])  # the compiled program solves these
    assert all(float(line.split(",")[4]) <= float(line.split(",")[5]) for line in table[1:])  # strict <= lenient
    summary = json.loads((run / "eval" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["sst2"].startswith("unavailable")


def test_answer_tokens_agree_with_the_exact_match_verdicts(tiny):
    """Per place, against the independent verdicts: all numbered places right = lenient, and the end too =
    strict; on a scripted model that writes " 3" then "1", every place right but the end."""
    task = get_task("count")
    examples = task.split("test", 24)
    places = answer_tokens(tiny.model, tiny.tokenizer, task, examples)
    numbered = places[places.place != "end"].groupby("example").correct.all()
    ends = places[places.place == "end"].set_index("example").correct
    assert numbered.tolist() == teacher_forced_correct(tiny.model, tiny.tokenizer, task, examples, strict=False)
    assert (numbered & ends).tolist() == teacher_forced_correct(tiny.model, tiny.tokenizer, task, examples)
    tokenizer = adapt_tokenizer(gpt2_tokenizer())
    example = task.make("x x x y y".split())
    scripted = answer_tokens(ScriptedLM(tokenizer, {":": " 3", " 3": "1"}), tokenizer, task, [example])
    assert scripted[["place", "token", "correct"]].values.tolist() == [["1", " 3", True], ["end", "1", False]]
