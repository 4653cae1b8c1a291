"""Zoo generation: Parquet shards, resume after a kill, global dedup, split by hash, same zoo on Ray."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from workbench.decompile.encoding import decode, encode, program_hash
from workbench.decompile.faithful import random_inputs
from workbench.decompile.generator import GeneratorConfig
from workbench.decompile.weights import encode_weights
from workbench.decompile.zoo import (
    ZooConfig,
    completed_shards,
    generate_zoo,
    generation_time,
    grid_of_row,
    load_zoo,
    program_of_row,
    shard_path,
    split_of,
    weights_of_row,
)
from workbench.errors import WorkbenchError

# small programs keep the tests fast; the thesis defaults are what the CLI uses
SMALL = ZooConfig(generator=GeneratorConfig(n_ops=8, min_length=3, vocab_max=5, max_seq_len=6), seed=3,
                  shard_size=6, n_inputs=8, timeout_s=60)


def _counts(summary):
    return {k: v for k, v in summary.items() if k not in ("shard_seconds", "cpu_seconds")}  # all but the time


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo") / "zoo"
    summary = generate_zoo(8, out, SMALL, workers=0, progress=False)
    return out, summary


def test_the_zoo_holds_n_unique_faithful_programs_with_their_weights(zoo):
    out, summary = zoo
    frame = load_zoo(out)
    assert summary["programs"] == len(frame) == 8
    assert frame["id"].is_unique and list(frame["index"]) == sorted(frame["index"])
    for _, row in frame.iterrows():
        program, grid = program_of_row(row), grid_of_row(row)
        assert program_hash(grid) == row["id"] and encode(program) == grid
        decoded = decode(grid, program.vocab, program.max_seq_len)
        for tokens in random_inputs(program, 3, 0):
            assert decoded.outcome(tokens) == program.outcome(tokens)
        weights = weights_of_row(row)
        assert [k for k, _ in weights] == list(row["weight_kinds"])
        assert encode_weights(weights, list(row["layer_types"])).shape == (row["n_weight_tokens"], 745)
        assert row["n_weight_tokens"] <= 40
        assert row["split"] == split_of(row["id"])


def test_every_attempt_is_counted_once(zoo):
    out, summary = zoo
    for stats in completed_shards(out).values():
        programs = stats["accepted"] + sum(v for k, v in stats["rejected"].items() if k != "too_short")
        assert programs == stats["attempted"] == SMALL.shard_size
        assert stats["accepted"] == pq.read_table(shard_path(out, stats["shard"], "parquet")).num_rows
    assert summary["accepted"] + sum(v for k, v in summary["rejected"].items() if k != "too_short") == \
        summary["attempted"]


def test_a_run_killed_mid_shard_resumes_and_gives_the_same_zoo(zoo, tmp_path):
    out, summary = zoo
    copy = tmp_path / "zoo"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    shards = sorted(completed_shards(copy))
    victim = shards[len(shards) // 2]
    shard_path(copy, victim, "json").unlink()  # killed before its counts were written ...
    parquet = shard_path(copy, victim, "parquet")
    parquet.write_bytes(parquet.read_bytes()[:50])  # ... and in the middle of its Parquet file
    (copy / "index.parquet").unlink()
    before = {s: shard_path(copy, s, "parquet").stat().st_mtime_ns for s in shards if s != victim}
    resumed = generate_zoo(8, copy, SMALL, workers=0, progress=False)
    assert {s: shard_path(copy, s, "parquet").stat().st_mtime_ns for s in before} == before  # not redone
    assert sorted(completed_shards(copy)) == shards
    assert _counts(resumed) == _counts(summary)
    assert load_zoo(copy)["id"].tolist() == load_zoo(out)["id"].tolist()


def test_duplicates_are_dropped_globally_keeping_the_lowest_index(tmp_path):
    tiny = GeneratorConfig(n_ops=1, min_length=1, vocab_min=1, vocab_max=1, numeric_share=1.0, const_min=1,
                           const_max=1, float_share=0.0, max_seq_len=4)  # a few dozen possible programs
    config = ZooConfig(generator=tiny, seed=0, shard_size=10, n_inputs=4, timeout_s=60)
    summary = generate_zoo(6, tmp_path / "dups", config, workers=0, progress=False)
    frame = load_zoo(tmp_path / "dups")
    assert summary["duplicates"] > 0 and frame["id"].is_unique and len(frame) == 6
    rows = []
    for stats in completed_shards(tmp_path / "dups").values():
        rows += pq.read_table(shard_path(tmp_path / "dups", stats["shard"], "parquet"),
                              columns=["id", "index"]).to_pylist()
    first = {}
    for row in sorted(rows, key=lambda r: r["index"]):
        first.setdefault(row["id"], row["index"])
    assert all(first[i] == k for i, k in zip(frame["id"], frame["index"]))


def test_generation_time_leaves_out_the_pauses_between_resumes(zoo, tmp_path):
    import shutil

    out = tmp_path / "timed"
    shutil.copytree(zoo[0], out)
    for extra in (7, 8):  # more shards than the fixture made, so the small gaps add up
        shutil.copy(shard_path(out, 0, "parquet"), shard_path(out, extra, "parquet"))
        stats = {**json.loads(shard_path(out, 0, "json").read_text()), "shard": extra}
        shard_path(out, extra, "json").write_text(json.dumps(stats))
    shards = sorted(completed_shards(out))
    assert len(shards) >= 4
    # completions at 0, 10, 20, ... s, and a 1,000 s pause (a killed run) before the last shard
    finished = [1_000_000.0 + 10 * i for i in range(len(shards) - 1)] + [1_000_000.0 + 10 * (len(shards) - 2) + 1000]
    for shard, when in zip(shards, finished):
        os.utime(shard_path(out, shard, "json"), (when, when))
    median = sorted(s["seconds"] for s in completed_shards(out).values())
    median = (median[(len(median) - 1) // 2] + median[len(median) // 2]) / 2
    seconds, stretches = generation_time(out, pause=300)
    assert stretches == 2
    assert seconds == pytest.approx(10 * (len(shards) - 2) + 2 * median)
    assert generation_time(out, pause=2000) == (pytest.approx(10 * (len(shards) - 2) + 1000 + median), 1)


def test_resuming_with_other_settings_is_refused(zoo):
    out, _ = zoo
    with pytest.raises(WorkbenchError, match="other settings.*seed"):
        generate_zoo(8, out, ZooConfig(generator=SMALL.generator, seed=4, shard_size=6, n_inputs=8), workers=0,
                     progress=False)


def test_split_is_a_function_of_the_hash():
    ids = [program_hash([[str(i)]]) for i in range(3000)]
    splits = [split_of(i) for i in ids]
    assert 0.77 < splits.count("train") / 3000 < 0.83 and 0.08 < splits.count("test") / 3000 < 0.12
    assert split_of("0" * 64) == "train" and split_of("f" * 64) == "test"


def test_ray_with_two_workers_makes_the_same_zoo(zoo, tmp_path):
    ray = pytest.importorskip("ray")
    out, summary = zoo
    try:
        on_ray = generate_zoo(8, tmp_path / "ray", SMALL, workers=2, progress=False)
    finally:
        ray.shutdown()
    assert load_zoo(tmp_path / "ray")["id"].tolist() == load_zoo(out)["id"].tolist()
    assert on_ray["programs"] == summary["programs"]
    pids = {s["pid"] for s in completed_shards(tmp_path / "ray").values()}
    assert os.getpid() not in pids  # the shards ran in Ray's worker processes


@pytest.mark.slow
def test_a_killed_zoo_generate_command_resumes_without_duplicates(tmp_path):
    """The real thing: SIGKILL the command once a shard is written, run it again, compare with one clean run."""
    out, clean = tmp_path / "killed", tmp_path / "clean"
    args = ["--n", "10", "--workers", "0", "--shard-size", "5", "--ops", "8", "--min-length", "3",
            "--vocab-max", "5", "--max-seq-len", "6", "--n-inputs", "8", "--seed", "5"]
    command = [sys.executable, "-m", "workbench.cli", "zoo", "generate"]
    process = subprocess.Popen([*command, "--out", str(out), *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not list((out / "shards").glob("*.json")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "index.parquet").exists()
    subprocess.run([*command, "--out", str(out), *args], check=True, capture_output=True)
    subprocess.run([*command, "--out", str(clean), *args], check=True, capture_output=True)
    resumed = load_zoo(out)
    assert resumed["id"].is_unique and len(resumed) == 10
    assert resumed["id"].tolist() == load_zoo(clean)["id"].tolist()
    assert _counts(json.loads((out / "summary.json").read_text())) == \
        _counts(json.loads((clean / "summary.json").read_text()))
