"""The compiled-model zoo: generated programs, compiled, checked faithful, written as Parquet shards on Ray.

Layout of a zoo folder::

    config.json                 generator and zoo settings (a resumed run must use the same)
    shards/shard-00000.parquet  the accepted programs of program indices [0, shard_size)
    shards/shard-00000.json     that shard's counts (attempted, accepted, rejected by reason, seconds)
    index.parquet               the zoo: id (SHA-256 of the canonical tokens), index, shard, split
    summary.json                counts of the whole zoo

Shard k holds program indices ``[k·S, (k+1)·S)`` (S = shard_size) and is one Ray task
(config, seed, first index, count); program i is drawn from the i-th child of
``SeedSequence(seed)``, so shards are independent of one another and of the worker count. A
shard's JSON is written last, after its Parquet file is renamed into place: a shard with a JSON
is complete and is skipped when the command runs again, so a killed run resumes at the first
shard it had not finished, and a partly written shard is redone. The zoo is then the first N
accepted programs by index with duplicates (same canonical tokens) dropped, the lowest index
kept; train / validation / test follow from the hash (``int(id[:8], 16) / 16**8`` against the
split fractions), so a program's split never depends on which others were generated.

Ray has no task timeout: each task compiles its programs in a child process
(:class:`~workbench.decompile.faithful.CompileWorker`), which it kills once the child has used
``timeout_s`` CPU seconds on one program (CPU, not wall time: what is rejected does not depend
on how busy the machine is), and restarts from a preloaded forkserver.
``ray.init(address=...)`` joins a cluster; without an address Ray starts locally with
``workers`` CPUs. ``workers=0`` runs the shards in this process, without Ray.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from workbench.decompile.encoding import encode, flat, program_hash, unflat
from workbench.decompile.faithful import REASONS, CompileWorker
from workbench.decompile.generator import GeneratorConfig, generate_with_stats
from workbench.decompile.program import Program
from workbench.decompile.weights import MAX_WEIGHT_TOKENS, n_weight_tokens
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")
ALL_REASONS = ("too_short",) + REASONS  # too_short counts raw draws, the others programs


@dataclasses.dataclass(frozen=True)
class ZooConfig:
    """What a zoo is made of. ``split`` gives the train and validation fractions; test is the rest."""

    generator: GeneratorConfig = GeneratorConfig()
    seed: int = 0
    causal: bool = False
    n_inputs: int = 16
    timeout_s: float = 5.0
    memory_mb: int = 4096
    max_weight_tokens: int = MAX_WEIGHT_TOKENS
    shard_size: int = 100
    split: tuple[float, float] = (0.8, 0.1)

    def __post_init__(self):
        train, validation = self.split
        checks = [("n_inputs", self.n_inputs >= 1, "at least 1"), ("timeout_s", self.timeout_s > 0, "positive"),
                  ("memory_mb", self.memory_mb >= 0, "0 (no cap) or more"),
                  ("max_weight_tokens", self.max_weight_tokens >= 0, "0 (no limit) or more"),
                  ("shard_size", self.shard_size >= 1, "at least 1"),
                  ("split", 0 < train and 0 <= validation and train + validation <= 1, "train > 0, train + val ≤ 1")]
        for name, ok, rule in checks:
            if not ok:
                raise WorkbenchError(f"zoo setting {name}={getattr(self, name)!r} must be {rule}")

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["split"] = list(self.split)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "ZooConfig":
        data = dict(data)
        data["generator"] = GeneratorConfig(**data["generator"])
        data["split"] = tuple(data["split"])
        return cls(**data)

    def identity(self) -> dict:
        """The settings that decide the zoo's content (the timeout and memory cap do too, but may be raised)."""
        data = self.to_json()
        del data["memory_mb"]
        return data


def split_of(program_id: str, split: tuple[float, float] = (0.8, 0.1)) -> str:
    """train / validation / test from the SHA-256 hex id alone."""
    u = int(program_id[:8], 16) / 16**8
    return "train" if u < split[0] else "validation" if u < split[0] + split[1] else "test"


# ---- one shard -------------------------------------------------------------------------------------
def _schema():
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()), ("index", pa.int64()), ("shard", pa.int32()), ("tokens", pa.list_(pa.string())),
        ("n_lines", pa.int32()), ("program", pa.string()), ("vocab_size", pa.int32()),
        ("numeric_inputs", pa.bool_()), ("max_seq_len", pa.int32()), ("causal", pa.bool_()),
        ("layer_types", pa.list_(pa.string())), ("n_layers", pa.int32()), ("residual_width", pa.int32()),
        ("weight_kinds", pa.list_(pa.string())), ("weight_shapes", pa.list_(pa.list_(pa.int32()))),
        ("weights", pa.list_(pa.float32())), ("n_weight_tokens", pa.int32()), ("compile_seconds", pa.float32()),
    ])


_WORKER: CompileWorker | None = None  # one compiling child per process (a Ray worker runs many shards)


def _compile_worker(config: ZooConfig) -> CompileWorker:
    global _WORKER
    if _WORKER is None or (_WORKER.timeout_s, _WORKER.memory_mb) != (config.timeout_s, config.memory_mb):
        if _WORKER is not None:
            _WORKER.close()
        _WORKER = CompileWorker(config.timeout_s, config.memory_mb)
    return _WORKER


def shard_path(out: Path, shard: int, suffix: str) -> Path:
    return Path(out) / "shards" / f"shard-{shard:05d}.{suffix}"


def run_shard(config_json: dict, out: str, shard: int) -> dict:
    """Generate, compile and check program indices [shard·S, (shard+1)·S); write the shard; its counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    config = ZooConfig.from_json(config_json)
    start_index, started, cpu = shard * config.shard_size, time.perf_counter(), time.process_time()
    worker = _compile_worker(config)
    rows, rejected, compile_seconds, child_cpu = [], Counter(), 0.0, 0.0
    for index in range(start_index, start_index + config.shard_size):
        draw = generate_with_stats(config.generator, config.seed, index)
        rejected["too_short"] += draw.too_short
        program = draw.program
        grid = encode(program)
        program_id = program_hash(grid)
        result = worker.compile(program, config.causal, config.n_inputs, seed=int(program_id[:8], 16),
                                max_weight_tokens=config.max_weight_tokens)
        compile_seconds += result.seconds
        child_cpu += result.cpu_seconds
        if result.status != "ok":
            rejected[result.status] += 1
            continue
        rows.append({
            "id": program_id, "index": index, "shard": shard, "tokens": flat(grid), "n_lines": len(program),
            "program": program.to_json(), "vocab_size": len(program.vocab), "numeric_inputs": program.numeric_inputs,
            "max_seq_len": program.max_seq_len, "causal": config.causal, "layer_types": result.layer_types,
            "n_layers": result.n_layers, "residual_width": result.residual_width,
            "weight_kinds": [kind for kind, _ in result.weights],
            "weight_shapes": [list(w.shape) for _, w in result.weights],
            "weights": np.concatenate([w.reshape(-1) for _, w in result.weights] or [np.zeros(0)]).astype(np.float32),
            "n_weight_tokens": n_weight_tokens([w.size for _, w in result.weights]),
            "compile_seconds": result.seconds,
        })
    parquet, stats_path = shard_path(out, shard, "parquet"), shard_path(out, shard, "json")
    parquet.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=_schema())
    partial = parquet.with_name(parquet.name + f".partial-{os.getpid()}")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, parquet)
    stats = {"shard": shard, "first_index": start_index, "attempted": config.shard_size, "accepted": len(rows),
             "rejected": {reason: rejected.get(reason, 0) for reason in ALL_REASONS},
             "seconds": time.perf_counter() - started, "compile_seconds": compile_seconds,
             "cpu_seconds": time.process_time() - cpu + child_cpu, "pid": os.getpid()}
    partial = stats_path.with_name(stats_path.name + f".partial-{os.getpid()}")
    partial.write_text(json.dumps(stats, indent=1))
    os.replace(partial, stats_path)
    return stats


# ---- the zoo ----------------------------------------------------------------------------------------
def _check_config(out: Path, config: ZooConfig) -> None:
    path = out / "config.json"
    if path.exists():
        try:
            existing = ZooConfig.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as error:
            raise WorkbenchError(f"{path} is not a zoo config ({error}); use another --out folder") from None
        if existing.identity() != config.identity():
            diff = sorted(k for k in config.identity() if config.identity()[k] != existing.identity()[k])
            raise WorkbenchError(f"{out} holds a zoo made with other settings ({', '.join(diff)}); use another "
                                 f"--out folder or the same settings to resume it")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config.to_json(), indent=1))


def completed_shards(out: Path) -> dict[int, dict]:
    found = {}
    for path in sorted((Path(out) / "shards").glob("shard-*.json")):
        stats = json.loads(path.read_text())
        if shard_path(out, stats["shard"], "parquet").exists():
            found[stats["shard"]] = stats
    return found


def generation_time(out: Path | str, pause: float = 300.0) -> tuple[float, int]:
    """Wall seconds a zoo took to make, and in how many stretches, from its shards' completion times.

    A pause longer than ``pause`` seconds between two completions (a killed run before its resume)
    is left out; each stretch's first shards started one median shard before they finished. The
    files' modification times are the clock, so this holds where the zoo was made.
    """
    shards = completed_shards(Path(out))
    if not shards:
        return 0.0, 0
    finished = sorted(shard_path(Path(out), s, "json").stat().st_mtime for s in shards)
    gaps = [b - a for a, b in zip(finished, finished[1:])]
    stretches = 1 + sum(gap > pause for gap in gaps)
    median_shard = float(np.median([s["seconds"] for s in shards.values()]))
    return sum(gap for gap in gaps if gap <= pause) + stretches * median_shard, stretches


def _read_ids(out: Path, shards) -> list[tuple[int, str, int, int]]:
    import pyarrow.parquet as pq

    rows = []
    for shard in shards:
        table = pq.read_table(shard_path(out, shard, "parquet"), columns=["index", "id", "shard", "n_lines"])
        rows += list(zip(*(table.column(c).to_pylist() for c in ("index", "id", "shard", "n_lines"))))
    return rows


def _unique_prefix(rows, n: int) -> list[tuple[int, str, int, int]]:
    seen, kept = set(), []
    for row in sorted(rows):
        if row[1] not in seen:
            seen.add(row[1])
            kept.append(row)
            if len(kept) == n:
                break
    return kept


def generate_zoo(n: int, out: Path | str, config: ZooConfig = ZooConfig(), workers: int | None = None,
                 address: str | None = None, progress: bool = True,
                 on_shard: Callable[[dict], None] | None = None) -> dict:
    """Generate (or resume) a zoo of ``n`` unique faithful programs in ``out``; its summary.

    Shards are launched in index order, one per worker, while the finished shards and those
    running (at the acceptance rate so far) fall short of ``n`` unique accepted programs.
    """
    if n < 1:
        raise WorkbenchError(f"--n must be at least 1 (got {n})")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WorkbenchError(f"--out {out} is a file; give a folder for the zoo")
    _check_config(out, config)
    done = completed_shards(out)
    total = Counter()
    for stats in done.values():
        total["attempted"] += stats["attempted"]
        total["accepted"] += stats["accepted"]
        for reason, count in stats["rejected"].items():
            total[reason] += count
    unique = {row[1] for row in _read_ids(out, done)}
    max_shards = max(10, 1000 * n // config.shard_size + 10)  # stops a setting that accepts nothing

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc="zoo", unit="prog", initial=min(len(unique), n), dynamic_ncols=True)
    started, attempted_here = time.perf_counter(), 0

    def record(stats: dict) -> None:
        nonlocal attempted_here
        done[stats["shard"]] = stats
        attempted_here += stats["attempted"]
        total["attempted"] += stats["attempted"]
        total["accepted"] += stats["accepted"]
        for reason, count in stats["rejected"].items():
            total[reason] += count
        before = len(unique)
        unique.update(row[1] for row in _read_ids(out, [stats["shard"]]))
        if bar is not None:
            bar.update(max(0, min(len(unique), n) - min(before, n)))
            rate = attempted_here / max(time.perf_counter() - started, 1e-9)
            shown = {r: total[r] for r in ALL_REASONS if total[r]}
            bar.set_postfix_str(f"{rate:.2f} programs/s, accepted {total['accepted']}/{total['attempted']}, "
                                f"rejected {shown}")
        if on_shard is not None:
            on_shard(stats)

    pending = (s for s in range(max_shards) if s not in done)
    if workers == 0:
        for shard in pending:
            if len(unique) >= n:
                break
            record(run_shard(config.to_json(), str(out), shard))
    else:
        import ray

        if not ray.is_initialized():
            kwargs = dict(address=address) if address else dict(num_cpus=workers or os.cpu_count(),
                                                                include_dashboard=False,
                                                                object_store_memory=100 * 2**20)
            ray.init(log_to_driver=False, logging_level=logging.WARNING, **kwargs)
        task = ray.remote(num_cpus=1, max_retries=2)(run_shard)
        slots = max(1, int(ray.available_resources().get("CPU", workers or 1)))  # one shard per worker
        in_flight = []

        def expected() -> float:  # accepted programs the running shards should bring, at the rate so far
            rate = total["accepted"] / total["attempted"] if total["attempted"] else 0.2  # ~ thesis settings
            return len(in_flight) * config.shard_size * rate

        while True:
            while len(in_flight) < slots and len(unique) + expected() < n:
                shard = next(pending, None)
                if shard is None:
                    break
                in_flight.append(task.remote(config.to_json(), str(out.resolve()), shard))
            if not in_flight:
                break
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            record(ray.get(ready[0]))
            if len(unique) >= n:  # enough: let the running shards finish (they are written anyway)
                for stats in ray.get(in_flight):
                    record(stats)
                break
    if bar is not None:
        bar.close()
    return write_index(out, n, config, total)


def write_index(out: Path, n: int, config: ZooConfig, total: Counter | None = None) -> dict:
    """Select the zoo (first n unique accepted by index), split it by hash, write index.parquet and summary.json."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    done = completed_shards(out)
    rows = _read_ids(out, done)
    kept = _unique_prefix(rows, n)
    # only shards below the last kept program's shard count as the zoo's attempts
    last_shard = kept[-1][2] if len(kept) == n else max(done, default=-1)
    counted = [done[s] for s in done if s <= last_shard]
    table = pa.table({"id": [r[1] for r in kept], "index": [r[0] for r in kept], "shard": [r[2] for r in kept],
                      "n_lines": [r[3] for r in kept], "split": [split_of(r[1], config.split) for r in kept]})
    pq.write_table(table, out / "index.parquet")
    attempted = sum(s["attempted"] for s in counted)
    accepted_in_range = sum(1 for r in rows if r[2] <= last_shard)
    summary = {
        "programs": len(kept), "requested": n, "attempted": attempted, "accepted": accepted_in_range,
        "duplicates": accepted_in_range - len({r[1] for r in rows if r[2] <= last_shard}),
        "rejected": {reason: sum(s["rejected"].get(reason, 0) for s in counted) for reason in ALL_REASONS},
        "splits": dict(Counter(table.column("split").to_pylist())), "shards": len(counted),
        "shard_seconds": sum(s["seconds"] for s in counted),
        "cpu_seconds": sum(s.get("cpu_seconds", 0.0) for s in counted),
    }
    if len(kept) < n:
        log.warning("the zoo has %d of the %d programs asked for: the settings accept too few programs",
                    len(kept), n)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def load_zoo(out: Path | str, split: str | None = None, columns: list[str] | None = None,
             indices: Iterable[int] | None = None):
    """The zoo's programs as a pandas DataFrame (index order), optionally one split, some program indices
    (only their shards are read) and some columns (the index's own: id, index, shard, n_lines, split)."""
    import pandas as pd
    import pyarrow.parquet as pq

    out = Path(out)
    if not (out / "index.parquet").exists():
        raise WorkbenchError(f"{out} is not a zoo (no index.parquet); make one with `workbench zoo generate --out "
                             f"{out}`")
    if split is not None and split not in SPLITS:
        raise WorkbenchError(f"unknown split {split!r}; use one of {list(SPLITS)}")
    index = pq.read_table(out / "index.parquet").to_pandas()
    if split is not None:
        index = index[index.split == split]
    if indices is not None:
        index = index[index["index"].isin(set(indices))]
    frames = []
    for shard, group in index.groupby("shard"):
        cols = None if columns is None else sorted((set(columns) - set(index.columns)) | {"id", "index"})
        table = pq.read_table(shard_path(out, int(shard), "parquet"), columns=cols).to_pandas()
        frames.append(table[table["index"].isin(set(group["index"]))])
    if not frames:
        return index.iloc[0:0]
    programs = pd.concat(frames, ignore_index=True).drop(columns=["shard"], errors="ignore")
    merged = index.merge(programs.drop(columns=["n_lines"], errors="ignore"), on=["id", "index"])
    return merged.sort_values("index").reset_index(drop=True)


def weights_of_row(row) -> list[tuple[str, np.ndarray]]:
    """A zoo row's craft weights as (type, matrix) in forward order."""
    flat_weights, found, offset = np.asarray(row["weights"], dtype=np.float32), [], 0
    for kind, shape in zip(row["weight_kinds"], row["weight_shapes"]):
        size = int(np.prod(shape))
        found.append((kind, flat_weights[offset:offset + size].reshape([int(s) for s in shape])))
        offset += size
    return found


def program_of_row(row) -> Program:
    return Program.from_json(row["program"])


def grid_of_row(row) -> list[list[str]]:
    return unflat(list(row["tokens"]))


def zoo_figure(frame) -> Any:
    """Histograms of program length (lines) and of the operations, as one plotly figure."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ops = Counter(token for tokens in frame["tokens"] for token in list(tokens)[::5]
                  if token not in ("START", "END"))
    figure = make_subplots(rows=1, cols=2, subplot_titles=("program length (lines)", "operations"))
    lengths = Counter(int(n) for n in frame["n_lines"])
    figure.add_trace(go.Bar(x=sorted(lengths), y=[lengths[k] for k in sorted(lengths)], name="programs"), 1, 1)
    figure.add_trace(go.Bar(x=list(ops), y=list(ops.values()), name="lines"), 1, 2)
    figure.update_layout(title=f"Decompiler zoo: {len(frame)} programs", showlegend=False)
    return figure
