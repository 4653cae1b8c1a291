"""The meta-model: shapes, vocabulary, noise, batches; training on a small zoo (the loss falls), exact resume,
evaluation against the metrics computed independently, and the command line's bad inputs."""

import json
import os

import pytest
import torch

from workbench.cli import main
from workbench.decompile.data import VALUES_START, add_noise, load_examples
from workbench.decompile.evaluate import evaluate_run
from workbench.decompile.metamodel import PAD, UNKNOWN, GridVocabulary, MetaModel, MetaModelConfig, grid_loss
from workbench.decompile.metrics import MajorityBaseline, token_accuracy
from workbench.decompile.train import TrainConfig, batch_indices, load_trained, predict, train
from workbench.decompile.weights import BLOCK
from workbench.decompile.zoo import load_zoo
from workbench.errors import WorkbenchError

TINY = MetaModelConfig(n_layers=1, d_model=32, n_heads=2, dropout=0.0)


def _config(**changes):
    return TrainConfig(**{"model": TINY, "steps": 20, "batch_size": 4, "lr": 3e-3, "warmup_steps": 3,
                          "eval_every": 0, "checkpoint_every": 10, **changes})


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_vocabulary_round_trip_and_unknown_tokens():
    grids = [[["START", "NA", "NA", "NA", "NA"], ["Map", "LAM_ADD", "tokens", "c:1", "v1"],
              ["END", "NA", "NA", "NA", "NA"]]]
    vocabulary = GridVocabulary.from_grids(grids)
    ids = vocabulary.encode(grids[0], rows=5)
    assert ids.shape == (5, 5)
    assert vocabulary.decode(ids) == grids[0] + [[PAD] * 5] * 2
    unseen = vocabulary.decode(vocabulary.encode([["START", "NA", "NA", "NA", "NA"],
                                                  ["Map", "LAM_SUB", "tokens", "c:7", "v1"]], rows=2))
    assert unseen[1] == ["Map", UNKNOWN, "tokens", UNKNOWN, "v1"]
    assert GridVocabulary.from_json(json.loads(json.dumps(vocabulary.to_json()))).columns == vocabulary.columns
    with pytest.raises(WorkbenchError, match="does not fit"):
        vocabulary.encode(grids[0], rows=2)


def test_padding_weight_tokens_do_not_change_the_prediction():
    torch.manual_seed(0)
    model = MetaModel(MetaModelConfig(n_layers=2, d_model=32, n_heads=2, max_weight_tokens=6), [4, 5, 6, 7, 8]).eval()
    weights, mask = torch.randn(1, 6, 745), torch.tensor([[True] * 3 + [False] * 3])
    scrambled = weights.clone()
    scrambled[0, 3:] = torch.randn(3, 745) * 100
    a, b = model(weights, mask), model(scrambled, mask)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b))
    changed = weights.clone()
    changed[0, 1] += 1
    assert not torch.allclose(model(changed, mask)[0], a[0])  # the real tokens are read


def test_grid_loss_is_the_sum_of_the_column_cross_entropies():
    logits = [torch.randn(2, 3, n) for n in (4, 5, 6, 7, 8)]
    targets = torch.stack([torch.randint(n, (2, 3)) for n in (4, 5, 6, 7, 8)], -1)
    expected = 0.0
    for c, column in enumerate(logits):
        log_p = column.log_softmax(-1)
        expected += -log_p.gather(-1, targets[..., c:c + 1]).mean()
    assert float(grid_loss(logits, targets)) == pytest.approx(float(expected), rel=1e-5)


def test_noise_goes_onto_parameter_values_only_scaled_by_their_std():
    weights = torch.zeros(1, 2, 745)
    std, count = torch.tensor([[2.0, 0.5]]), torch.tensor([[BLOCK, 100]])
    noisy = add_noise(weights, std, count, 0.4, torch.Generator().manual_seed(0))
    values = noisy[0, :, VALUES_START:VALUES_START + BLOCK]
    assert torch.equal(noisy[..., :VALUES_START], weights[..., :VALUES_START])  # type one-hot and flag untouched
    assert torch.equal(noisy[..., VALUES_START + BLOCK:], weights[..., VALUES_START + BLOCK:])  # architecture
    assert values[0].std().item() == pytest.approx(0.8, rel=0.1)
    assert values[1, :100].std().item() == pytest.approx(0.2, rel=0.25) and values[1, 100:].abs().sum() == 0
    assert torch.equal(add_noise(weights, std, count, 0.0), weights)


def test_batches_cover_every_example_once_per_epoch():
    seen = torch.cat([batch_indices(step, 4, 10, seed=1) for step in range(5)])  # 2 epochs of 10
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert torch.equal(batch_indices(3, 4, 10, 1), batch_indices(3, 4, 10, 1))
    assert not torch.equal(seen[:10], seen[10:])


@pytest.fixture(scope="module")
def trained(small_zoo, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    train(_config(), small_zoo, run, progress=False)
    return run


def test_training_lowers_the_loss(trained):
    losses = [m["loss"] for m in _metrics(trained)]
    assert len(losses) == 20
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    lrs = [m["lr"] for m in _metrics(trained)]
    assert lrs[1] > lrs[0] and lrs[2] == max(lrs) and lrs[-1] == pytest.approx(0.0, abs=1e-12)  # warm-up, cosine


def test_resume_gives_the_uninterrupted_weights(small_zoo, tmp_path, trained):
    run = tmp_path / "run"
    train(_config(), small_zoo, run, progress=False, stop_after=10)  # "killed" after the step-10 checkpoint
    with open(run / "metrics.jsonl", "a") as handle:  # a step logged after that checkpoint, then lost
        handle.write(json.dumps({"step": 11, "loss": 0.0}) + "\n")
    train(_config(), small_zoo, run, resume=True, progress=False)
    straight, _, _ = load_trained(trained)
    resumed, _, saved = load_trained(run)
    assert saved["step"] == 20
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert [m["loss"] for m in _metrics(run)] == [m["loss"] for m in _metrics(trained)]


def test_a_run_is_not_resumed_with_other_settings(small_zoo, trained):
    with pytest.raises(WorkbenchError, match="lr"):
        train(_config(lr=1e-2), small_zoo, trained, resume=True, progress=False)
    with pytest.raises(WorkbenchError, match="--resume"):
        train(_config(), small_zoo, trained, progress=False)


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(small_zoo, tmp_path):
    run = tmp_path / "run"
    train(_config(steps=12), small_zoo, run, progress=False, stop_after=10)
    saved = json.loads((run / "config.json").read_text())
    del saved["train"]["train_programs"]  # as a run made before the setting was added
    (run / "config.json").write_text(json.dumps(saved))
    assert train(_config(steps=12), small_zoo, run, resume=True, progress=False)["step"] == 12
    with pytest.raises(WorkbenchError, match="train_programs"):
        train(_config(steps=12, train_programs=8), small_zoo, run, resume=True, progress=False)


def test_train_programs_takes_the_first_programs_of_the_train_split(small_zoo, tmp_path):
    run = tmp_path / "run"
    train(_config(steps=2, train_programs=8), small_zoo, run, progress=False)
    vocabulary = json.loads((run / "vocabulary.json").read_text())
    first_eight = load_examples(small_zoo, "train", TINY.max_weight_tokens, limit=8)
    everything = load_examples(small_zoo, "train", TINY.max_weight_tokens)
    assert GridVocabulary.from_grids(everything.grids).to_json() != GridVocabulary.from_grids(first_eight.grids).to_json()
    assert vocabulary == GridVocabulary.from_grids(first_eight.grids).to_json()


def test_evaluation_matches_the_metrics_computed_here(trained, small_zoo):
    summary = evaluate_run(trained, "train", functional=True, n_inputs=4)
    model, vocabulary, saved = load_trained(trained)
    examples = load_examples(small_zoo, "train", TINY.max_weight_tokens)
    predictions = predict(model, examples, vocabulary)
    accuracies = [token_accuracy(t, p) for t, p in zip(examples.grids, predictions)]
    assert summary["programs"] == len(examples) and summary["step"] == 20
    assert summary["token_accuracy"] == pytest.approx(sum(accuracies) / len(accuracies))
    raw = [token_accuracy(t, p) for t, p in zip(examples.grids, predict(model, examples, vocabulary, False))]
    assert summary["raw_token_accuracy"] == pytest.approx(sum(raw) / len(raw))
    baseline = MajorityBaseline(examples.grids, TINY.rows)
    expected = [token_accuracy(t, baseline.grid) for t in examples.grids]
    assert summary["baseline_token_accuracy"] == pytest.approx(sum(expected) / len(expected))
    shares = [summary[f"functional_{s}"] for s in ("invalid", "different", "not_compilable")]
    assert summary["functional_accuracy"] + sum(shares) == pytest.approx(1.0)
    assert json.loads((trained / "eval_train.json").read_text())["token_accuracy"] == summary["token_accuracy"]


def _cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["decompile", "train", "--zoo", "/nonexistent/zoo", "--out", "RUN"], "is not a zoo"),
    (["decompile", "train", "--zoo", "Z", "--out", "RUN", "--lr", "nan"], "--lr"),
    (["decompile", "train", "--zoo", "Z", "--out", "RUN", "--steps", "0"], "--steps"),
    (["decompile", "eval", "/nonexistent/run"], "is not a meta-model run"),
    (["decompile", "eval", "RUN", "--split", "nope"], "invalid choice"),
    (["decompile", "/nonexistent/run", "--program", "make_hist"], "is not a meta-model run"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    code, captured = _cli(argv, capsys)
    assert code == 2 and "Traceback" not in captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err


def test_show_names_the_programs_it_knows(trained, capsys):
    code, captured = _cli(["decompile", str(trained), "--program", "make_nothing"], capsys)
    assert code == 2 and "make_sort_unique" in captured.err
    code, captured = _cli(["decompile", str(trained), "--program", "zoo:x"], capsys)
    assert code == 2 and "zoo:INDEX" in captured.err
    code, captured = _cli(["decompile", str(trained), "--program", "zoo:999999"], capsys)
    assert code == 2 and "no program with index 999999" in captured.err


def test_show_decompiles_a_zoo_program_by_index(trained, small_zoo, capsys):
    test_program = load_zoo(small_zoo, split="test").iloc[0]
    code, captured = _cli(["decompile", str(trained), "--program", f"zoo:{test_program['index']}", "--n-inputs", "4"],
                          capsys)
    assert code == 0, captured.err
    assert f"zoo program {test_program['index']} (test split)" in captured.out
    assert " ".join(list(test_program["tokens"])[5:10]) in captured.out  # the true first line, token by token


def test_show_prints_true_and_predicted_token_by_token(trained, capsys):
    code, captured = _cli(["decompile", str(trained), "--program", "make_hist", "--n-inputs", "4"], capsys)
    assert code == 0, captured.err
    out = captured.out
    assert "tracr.compiler.lib.make_hist" in out and "Select PRED_EQ tokens tokens v1" in out
    assert "token accuracy" in out and "functionally equal: " in out


def _full_vocabulary():
    from workbench.decompile.program import LAMBDAS, OPS, PREDICATES

    variables = [f"v{i}" for i in range(1, 17)]
    return GridVocabulary([[PAD, UNKNOWN, "START", "END", *OPS], [PAD, "NA", *LAMBDAS, *PREDICATES, *variables],
                           [PAD, "NA", "tokens", "indices", *variables],
                           [PAD, "NA", "c:1", "c:2", "tokens", "indices", *variables], [PAD, "NA", *variables]])


def test_constrained_reading_keeps_the_grammar():
    from workbench.decompile.encoding import decode
    from workbench.decompile.metamodel import constrained_grid

    vocabulary = _full_vocabulary()
    sizes = vocabulary.sizes()
    scores = [torch.zeros(4, n) for n in sizes]

    def prefer(column, row, token, value=5.0):
        scores[column][row, vocabulary.index[column][token]] = value

    prefer(0, 1, "SelectorWidth", 9)  # no selector yet: the next best op, Map
    prefer(0, 1, "Map")
    prefer(1, 1, "PRED_EQ", 9)  # a Map takes a lambda
    prefer(1, 1, "LAM_ADD")
    prefer(2, 1, "v3", 9)  # v3 is not defined yet
    prefer(2, 1, "tokens")
    prefer(3, 1, "v1", 9)  # a Map's third slot is a constant
    prefer(3, 1, "c:2")
    prefer(0, 2, "END")
    grid = constrained_grid(scores, vocabulary)
    assert grid[:3] == [["START", "NA", "NA", "NA", "NA"], ["Map", "LAM_ADD", "tokens", "c:2", "v1"],
                        ["END", "NA", "NA", "NA", "NA"]] and grid[3] == [PAD] * 5
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):  # any scores give a program, unless the rows run out right after a Select
        grid = constrained_grid([torch.randn(17, n, generator=generator) for n in sizes], vocabulary)
        last = max(r for r, row in enumerate(grid) if row[0] != PAD) - 1
        if grid[last][0] != "Select":
            decode(grid, [0, 1, 2], 5)


_DDP_SCRIPT = """
import hashlib, sys, torch
from workbench.decompile.metamodel import MetaModelConfig
from workbench.decompile.train import TrainConfig, train
model = MetaModelConfig(n_layers=1, d_model=32, n_heads=2, dropout=0.0, input_dropout=0.0)
result = train(TrainConfig(model=model, steps=4, batch_size=8, lr=3e-3, warmup_steps=1, eval_every=0,
                           checkpoint_every=4, noise=0.0), sys.argv[1], sys.argv[2], progress=False)
digest = hashlib.sha256()
for name, tensor in sorted(result["model"].state_dict().items()):
    digest.update(name.encode()); digest.update(tensor.detach().numpy().tobytes())
open(f"{sys.argv[2]}/replica{torch.distributed.get_rank()}.sha", "w").write(digest.hexdigest())
"""


def test_two_torchrun_processes_train_one_meta_model(small_zoo, tmp_path):
    """Under torchrun (gloo on CPU) the replicas stay identical and land near one process trained on
    the same global batches (each averages its own half's tokens, so close, not equal); the scale is
    a run on other batches (another seed)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    run = tmp_path / "ddp"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                             str(port), str(script), str(small_zoo), str(run)], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run / "replica0.sha").read_text() == (run / "replica1.sha").read_text()
    assert len(_metrics(run)) == 4
    tiny = MetaModelConfig(n_layers=1, d_model=32, n_heads=2, dropout=0.0, input_dropout=0.0)
    settings = dict(model=tiny, steps=4, batch_size=8, lr=3e-3, warmup_steps=1, eval_every=0, checkpoint_every=4,
                    noise=0.0)
    train(TrainConfig(**settings), small_zoo, tmp_path / "single", progress=False)
    train(TrainConfig(**settings, seed=1), small_zoo, tmp_path / "other", progress=False)
    weights = {name: load_trained(tmp_path / name)[0].state_dict() for name in ("single", "other")}
    replica = load_trained(run)[0].state_dict()

    def distance(a, b):
        return sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in a) ** 0.5

    assert distance(replica, weights["single"]) < 0.5 * distance(weights["other"], weights["single"])
