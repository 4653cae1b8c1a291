"""``kill -9`` mid-training, then ``--resume``: the metrics equal an uninterrupted run's bit for bit.

Every run is the real command, ``workbench train ...`` through ``workbench.cli.main``, in a child
process that the test kills with SIGKILL: between two checkpoints, and in the middle of writing
one (the child stalls after the first file of the checkpoint's staging folder). The resume must
go on from the last intact checkpoint and log exactly the losses of a run never interrupted. A
run trained to N steps and resumed with ``--steps 2N`` (constant schedule) must continue the
same data stream as a straight 2N-step run.

The children are forked from the test process, which has imported torch and the workbench once
(a fresh interpreter per run would spend most of this file's time on imports); each child then
parses its arguments, builds its model and data and trains like the command line does.
"""

import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.inject import checkpoint

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="forks the test process (Linux)"),
    # JAX warns at any fork once it has run (tracr compiles with it). The children never call it: the
    # count program is compiled here first and they load it from the disk cache; a stalled child
    # would fail its wait (WAIT_S), not hang the suite.
    pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning"),
]

ARGS = ["--task", "count", "--model", "tiny-gpt2", "--tiny-layers", "4", "--task-batch", "4", "--text-batch", "2",
        "--text-tokens", "16", "--lr-model", "1e-3", "--lr-map", "1e-2", "--checkpoint-every", "2",
        "--eval-every", "0", "--lr-schedule", "constant"]
STEPS = 8
WAIT_S = 900  # wall-clock limit of one wait; the CPU time is a few seconds, a loaded machine stretches it


def _train_argv(run: Path, steps: int = STEPS, resume: bool = False) -> list[str]:
    return ["train", *ARGS, "--steps", str(steps), "--out", str(run), *(["--resume"] if resume else [])]


def _child(argv: list[str], log: str, stall_in: str | None, marker: str | None) -> None:
    """The command in a forked child; with ``stall_in``, it stops for good inside the checkpoint write
    whose staging folder name starts with it, after the first file (and says so in ``marker``)."""
    import threading

    import torch
    from tqdm import tqdm

    # tqdm's write lock holds a multiprocessing semaphore shared with the forking test process: a child
    # killed inside a bar refresh would keep it taken, and every later bar (the next child's, the
    # in-process trainer tests') would wait on it forever. Each child takes a lock of its own.
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(1)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    handle = open(log, "a")
    os.dup2(handle.fileno(), 1)
    os.dup2(handle.fileno(), 2)
    if stall_in is not None:
        write = checkpoint.save_file

        def stalling(tensors, path, *args, **kwargs):
            write(tensors, path, *args, **kwargs)
            if Path(path).parent.name.startswith(stall_in):
                Path(marker).write_text(str(path))
                time.sleep(3600)

        checkpoint.save_file = stalling
    os._exit(main(argv))


def _start(argv, log: Path, stall_in: str | None = None, marker: Path | None = None):
    process = multiprocessing.get_context("fork").Process(target=_child,
                                                          args=(argv, str(log), stall_in, marker and str(marker)))
    process.start()
    return process


def _wait_until(process, ready, log: Path, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if not process.is_alive():
            pytest.fail(f"the training child ended (exit {process.exitcode}) before {what}:\n"
                        + log.read_text()[-3000:])
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {WAIT_S} s:\n" + log.read_text()[-3000:])
        time.sleep(0.02)


def _kill(process) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.join(60)
    assert process.exitcode == -signal.SIGKILL


def _run(argv, log: Path) -> None:
    process = _start(argv, log)
    process.join(WAIT_S)
    if process.is_alive():
        process.kill()
    assert process.exitcode == 0, log.read_text()[-3000:]


def _metrics(run: Path) -> list[dict]:
    """Every logged value but the wall-clock time, per step."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being written when we look
            break
        records.append({k: v for k, v in record.items() if k != "time"})
    return records


def _logged_step(run: Path) -> int:
    records = _metrics(run)
    return records[-1]["step"] if records else 0


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run's metrics (the count program compiled once here, so children load it)."""
    from workbench.tasks import get_task

    get_task("count").compile()
    run = tmp_path_factory.mktemp("kill") / "straight"
    _run(_train_argv(run), run.parent / "straight.log")
    metrics = _metrics(run)
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    assert all(isinstance(m[k], float) for m in metrics for k in ("loss", "ce", "kl", "alignment"))
    return metrics


def test_kill_between_checkpoints_then_resume_is_exact(straight, tmp_path):
    run, log = tmp_path / "run", tmp_path / "train.log"
    process = _start(_train_argv(run), log)
    _wait_until(process, lambda: _logged_step(run) >= 3, log, "step 3 in metrics.jsonl")
    _kill(process)
    lost = _logged_step(run)
    assert 3 <= lost < STEPS
    saved = checkpoint.latest(run)
    assert saved is not None and int(saved.name.split("_")[1]) <= lost
    assert _metrics(run) == straight[:lost]  # what the killed run logged was already the straight run's

    _run(_train_argv(run, resume=True), log)
    assert _metrics(run) == straight  # bit for bit: the losses of every step, the resumed ones included


def test_kill_during_a_checkpoint_write_resumes_from_the_previous_one(straight, tmp_path):
    run, log, marker = tmp_path / "run", tmp_path / "train.log", tmp_path / "stalled"
    process = _start(_train_argv(run), log, stall_in=".step_0000004.", marker=marker)
    _wait_until(process, marker.exists, log, "the step-4 checkpoint write")
    _kill(process)
    root = run / "checkpoints"
    staging = [p for p in root.iterdir() if p.name.startswith(".step_0000004.")]
    assert len(staging) == 1 and (staging[0] / "model.safetensors").exists()  # killed with the write half done
    assert not (staging[0] / "manifest.json").exists()
    assert not (root / "step_0000004").exists()
    assert checkpoint.latest(run) == root / "step_0000002"
    checkpoint.verify(root / "step_0000002")
    assert _metrics(run) == straight[:4]

    _run(_train_argv(run, resume=True), log)
    assert _metrics(run) == straight
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # the half-written folder is cleared
    assert sorted(p.name for p in checkpoint.step_folders(run)) == ["step_0000006", "step_0000008"]


def test_resuming_with_more_steps_continues_the_same_data_stream(straight, tmp_path):
    run, log = tmp_path / "run", tmp_path / "train.log"
    half = STEPS // 2
    _run(_train_argv(run, steps=half), log)
    assert _metrics(run) == straight[:half]
    _run(_train_argv(run, steps=STEPS, resume=True), log)
    assert _metrics(run) == straight
