"""The evaluator against independent counts and hand computations."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from workbench import WorkbenchError
from workbench.align import align
from workbench.evaluate import answer_correct, compiled_correct, greedy, greedy_one_at_a_time, teacher_forced_correct
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
    assert table[0].startswith("task,set,compiled_supports,prompts,model_accuracy,compiled_accuracy")
    assert [line.split(",")[1] for line in table[1:]] == ["test", "x_only", "y_to_z"]
    assert all(line.split(",")[5] == "1.0" for line in table[1:])  # the compiled program solves these
    summary = json.loads((run / "eval" / "summary.json").read_text())
    assert summary["step"] == 2 and summary["sst2"].startswith("unavailable")
