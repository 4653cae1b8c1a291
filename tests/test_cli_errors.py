"""Every bad input to the command line: exit code 2, one line on stderr naming the problem and the fix,
no traceback, and the run folder left as it was. (``train``'s own cases live with the trainer.)"""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from workbench.cli import main
from workbench.inject import checkpoint
from workbench.inject.config import InjectionConfig
from workbench.inject.trainer import train

DYCK = "Are parentheses here correctly matched? [(x)].Answer:"


@pytest.fixture(scope="module")
def nan_run(tmp_path_factory):
    """A one-step TI run whose checkpointed weights hold a NaN (a diverged run), manifest consistent."""
    run = tmp_path_factory.mktemp("cli") / "nan_run"
    train(InjectionConfig(task="count", model="tiny-gpt2", tiny_layers=4, steps=1, task_batch=2, text_batch=2,
                          text_tokens=16, train_pool=20, checkpoint_every=1), run, progress=False)
    folder = checkpoint.latest(run)
    weights = load_file(folder / "model.safetensors")
    name = next(k for k in weights if k.endswith("attn.W_Q"))
    weights[name][0, 0, 0] = float("nan")
    save_file(weights, folder / "model.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model.safetensors"] = checkpoint._sha256(folder / "model.safetensors")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return run


def _snapshot(folder):
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as stop:  # argparse's own errors
        return stop.code


CASES = [
    # (id, argv with RUN / TMP placeholders, fragments the one line must hold)
    ("compile-empty-input", ["compile", "--program", "reverse", "--input", ""], ["--input is empty", "--input abc"]),
    ("compile-blank-input", ["compile", "--program", "reverse", "--input", "  "], ["--input is empty"]),
    ("compile-max-seq-len-0", ["compile", "--program", "reverse", "--input", "ab", "--max-seq-len", "0"],
     ["--max-seq-len must be at least 1 (got 0)"]),
    ("compile-max-seq-len-text", ["compile", "--program", "reverse", "--input", "ab", "--max-seq-len", "x"],
     ["--max-seq-len: invalid int value: 'x'", "workbench compile --help"]),
    ("eval-missing-shakespeare", ["eval", "RUN", "--shakespeare", "TMP/missing.txt"],
     ["--shakespeare", "missing.txt: no such file or folder", "leave --shakespeare out"]),
    ("eval-ppl-lines-0", ["eval", "RUN", "--ppl-lines", "0"], ["--ppl-lines must be at least 1 (got 0)"]),
    ("eval-n-0", ["eval", "RUN", "--n", "0"], ["--n must be at least 1 (got 0)"]),
    ("eval-misspelled-sst2", ["eval", "RUN", "--sst2", "TMP/sst2_validaton.jsonl"],
     ["--sst2", "sst2_validaton.jsonl: no such file or folder", "fix the path"]),
    ("eval-sst2-wrong-format", ["eval", "RUN", "--sst2", "RUN/config.json"], ["--sst2", "use a .jsonl, .csv"]),
    ("ablate-malformed-norms", ["ablate", "RUN", "--norms", "0,1,x"],
     ["--norms '0,1,x': 'x' is not a number", "--norms 0,1,5,10"]),
    ("ablate-empty-norms", ["ablate", "RUN", "--norms", ""], ["--norms '': '' is not a number"]),
    ("ablate-negative-norm", ["ablate", "RUN", "--norms", "0,-5"], ["must be finite and >= 0"]),
    ("compress-malformed-dims", ["compress", "--compiled", "sort_unique", "--dims", "8,,16", "--out", "TMP/c"],
     ["--dims '8,,16': '' is not an integer", "--dims 8,16,32"]),
    ("compress-float-dims", ["compress", "--compiled", "sort_unique", "--dims", "8.5", "--out", "TMP/c"],
     ["'8.5' is not an integer"]),
    ("compress-steps-0", ["compress", "--compiled", "sort_unique", "--dims", "4", "--steps", "0", "--out", "TMP/c"],
     ["--steps must be at least 1 (got 0)"]),
    ("compress-dims-0", ["compress", "--compiled", "sort_unique", "--dims", "0,4", "--out", "TMP/c"],
     ["dims entry 1 must be at least 1 (got 0)"]),
    ("compress-too-wide", ["compress", "--compiled", "sort_unique", "--dims", "8,30", "--steps", "1", "--n", "2",
                           "--out", "TMP/c"],
     ["cannot compress to width 30: the compiled residual has 25 dims", "from 1 to 25"]),
    ("circuits-malformed-thresholds", ["circuits", "--compiled", "reverse", "--thresholds", "0.1;0.2"],
     ["--thresholds '0.1;0.2': '0.1;0.2' is not a number"]),
    ("circuits-nan-thresholds", ["circuits", "--compiled", "reverse", "--thresholds", "nan"], ["must be finite"]),
    ("circuits-resamples-0", ["circuits", "--compiled", "reverse", "--resamples", "0"],
     ["--resamples must be at least 1"]),
    ("circuits-nan-weights", ["circuits", "--run", "RUN", "--methods", "eap", "--resamples", "1", "--n", "2"],
     ["has 1 NaN or infinite weights in blocks.", "training diverged"]),
    ("decode-out-of-vocab", ["decode", "--compiled", "dyck", "--prompt", DYCK, "--out", "TMP/d"],
     ["'x' (piece 8 of the prompt) never occurs in dyck prompts", "read it as filler", "e.g. 'Are parentheses"]),
    ("decode-empty-prompt", ["decode", "--compiled", "sum", "--prompt", " ", "--out", "TMP/d"], ["--prompt is empty"]),
]


@pytest.mark.parametrize("argv, fragments", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_clear_line(argv, fragments, nan_run, tmp_path, capsys):
    argv = [a.replace("RUN", str(nan_run)).replace("TMP", str(tmp_path)) for a in argv]
    before = _snapshot(nan_run)
    code = _exit_code(argv)
    captured = capsys.readouterr()
    err = captured.err
    assert code == 2, (code, err)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("\r", "WARNING"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err + captured.out
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert _snapshot(nan_run) == before
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_the_nan_run_is_otherwise_valid(nan_run):
    """The NaN case above fails for its weights, not for a broken folder."""
    checkpoint.verify(checkpoint.latest(nan_run))
    weights = load_file(checkpoint.latest(nan_run) / "model.safetensors")
    assert sum(int(torch.isnan(t).sum()) for t in weights.values()) == 1


def test_the_cli_offers_every_task():
    from workbench.cli import TASK_NAMES
    from workbench.tasks import TASKS

    assert TASK_NAMES == tuple(TASKS)
