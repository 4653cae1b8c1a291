"""The README's evidence, written from the committed results files (never typed by hand).

    python analyses/readme.py          # rewrite the generated blocks of README.md
    python analyses/readme.py --check  # exit 1 if README.md differs from what the results say

Each block sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->`` and is made
by ``BLOCKS[NAME]`` from ``results/`` and ``benchmarks/results/``. The test suite runs the check,
so a results file regenerated without the README following fails the tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCH = ROOT / "benchmarks" / "results"
RESULTS = ROOT / "results"
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def pct(value: float) -> str:
    return "—" if pd.isna(value) else f"{100 * value:.1f} %"


def markdown(rows: list[dict]) -> str:
    return pd.DataFrame(rows).to_markdown(index=False) + "\n"


def tasks() -> str:
    from workbench.tasks import TASKS

    table = pd.read_csv(BENCH / "tasks.csv").set_index("task")
    rows = []
    for name, task in TASKS.items():
        row = table.loc[name]
        example = task.split("test", 1)[0]
        suites = ", ".join(f"{suite} {pct(row[f'compiled_{suite}'])}" for suite in task.suites())
        rows.append({"task": name, "test prompt (answer supervised)": f"`{example.text}`",
                     "compiled program": f"{row.blocks} blocks, width {row.residual_width}, d_mlp {row.d_mlp}",
                     "compiled exact match: test; suites": f"{pct(row.compiled_test)}; {suites}",
                     "cold compile": f"{row.cold_compile_s:.0f} s"})
    return markdown(rows)


def injection_runs() -> str:
    runs = pd.read_csv(RESULTS / "injection.csv")
    bench = pd.read_csv(BENCH / "inject.csv").set_index(["preset", "task", "method"])
    rows = []
    for run in runs.itertuples():
        ood = ", ".join(f"{c.removeprefix('ood_').replace('_', '-')} {pct(getattr(run, c))}"
                        for c in runs.columns if c.startswith("ood_") and not pd.isna(getattr(run, c)))
        layers = [getattr(run, c) for c in runs.columns if c.startswith("agreement_layer")]
        layers = [v for v in layers if not pd.isna(v)]
        agreement = (f"{pct(run.agreement_mean)} ({', '.join(f'{100 * v:.1f}' for v in layers)})"
                     if layers else "—")
        timing = bench.loc[(run.preset, run.task, run.method)] if (run.preset, run.task, run.method) in bench.index \
            else None
        to_target = ("never" if timing is None or pd.isna(timing.steps_to_target)
                     else f"{int(timing.steps_to_target):,} ({timing.minutes_to_target:.0f} min)")
        rows.append({"preset": run.preset, "task": run.task, "method": "TI" if run.method == "ti" else "FT+KL",
                     "model": run.model, "steps": f"{run.steps:,}", "train min": f"{run.train_minutes:.0f}",
                     "steps to 95 % held-out": to_target, "test strict": pct(run.test_strict), "OOD suites": ood,
                     "decoded agreement (mean; per aligned layer)": agreement,
                     "perplexity change": f"{run.ppl_change_pct:+.1f} %", "verdict": run.verdict,
                     "preset's bar": run.meets_bar})
    return markdown(rows)


def injection_unfinished() -> str:
    checks = pd.read_csv(RESULTS / "injection_checks.csv")
    rows = []
    for run, part in checks[~checks.finished].groupby("run"):
        best, last = part.loc[part.eval_accuracy.idxmax()], part.iloc[-1]
        rows.append({"run (not finished)": run, "last check": f"step {last.step:,}",
                     "held-out strict: best (step); last": f"{pct(best.eval_accuracy)} ({best.step:,}); "
                                                           f"{pct(last.eval_accuracy)}",
                     "decoded agreement, last": pct(last.eval_agreement)})
    return markdown(rows) if rows else "(every run under runs/presets is finished)\n"


def unfinished_agreement() -> str:
    """Per unfinished TI run: its decoded agreement and the variables its residual holds least."""
    table = pd.read_csv(RESULTS / "injection_unfinished_agreement.csv")
    rows = []
    for (run, step), part in table.groupby(["run", "step"], sort=False):
        # runs of several programs share the file: a run's own aligned layers are its non-empty columns
        layers = part.set_index("variable")[[c for c in part if c.startswith("layer")]].dropna(axis=1, how="all")
        lowest = layers.mean(axis=1).nsmallest(5)
        rows.append({"run (not finished)": run, "checkpoint": f"step {step:,}",
                     "held-out strict there": pct(part.held_out_accuracy.iloc[0]), "variables": len(layers),
                     "agreement: mean; last aligned layer": f"{pct(layers.stack().mean())}; {pct(layers.iloc[:, -1].mean())}",
                     "least agreement (mean over its aligned layers)": ", ".join(
                         f"`{name}` {pct(value)}" for name, value in lowest.items())})
    return markdown(rows)


def answer_tokens() -> str:
    """The SmolLM2 runs' teacher-forced accuracy per place in the answer (1..k, then its end)."""
    places = pd.read_csv(RESULTS / "injection_answer_tokens.csv", dtype={"place": str})
    places = places[places.run.str.startswith("smollm2/")]
    rows = []
    for (run, step), part in places.groupby(["run", "step"], sort=False):
        cells = {f"place {r.place}" if r.place != "end" else "end": pct(r.accuracy) for r in part.itertuples()}
        rows.append({"run": run, "checkpoint": f"step {step:,}", **cells})
    table = pd.DataFrame(rows)
    places_in_order = sorted((c for c in table if c.startswith("place ")), key=lambda c: int(c.split()[1]))
    return table[["run", "checkpoint", *places_in_order, "end"]].fillna("—").to_markdown(index=False) + "\n"


def step_times() -> str:
    table = pd.read_csv(BENCH / "step.csv")
    return markdown([{"model": r.model, "task": r.task, "prompts + text rows": f"{r.task_batch} + {r.text_batch}",
                      "loader workers": int(r.loader_workers), "TI s/step (IQR)": f"{r.ti_step_s:.3f} ({r.ti_iqr_s:.3f})",
                      "FT+KL s/step (IQR)": f"{r.ft_step_s:.3f} ({r.ft_iqr_s:.3f})",
                      "ratio": f"{r.ratio_ti_ft:.3f}", "≤ 1.10": "yes" if r.meets_target else "no",
                      "compiled targets s/batch": f"{r.targets_s:.4f}" if pd.notna(r.targets_s) else "—"}
                     for r in table.itertuples()])


def zoo() -> str:
    table = pd.read_csv(BENCH / "zoo.csv")
    rows = [{"Ray workers": r.workers, "attempts": r.attempted, "attempts per CPU-second": f"{r.programs_per_cpu_s:.1f}",
             "attempts per wall-second": f"{r.programs_per_s:.2f}", "speed-up": f"{r.speed_up:.2f}",
             "accepted": pct(r.accepted_share), "unfaithful": pct(r.unfaithful_share),
             "> 40 weight tokens": pct(r.too_many_weight_tokens_share), "timeout": pct(r.timeout_share),
             "load average": f"{r.load_average_1m:.0f}"} for r in table.itertuples()]
    full = pd.read_csv(BENCH / "zoo_full.csv").iloc[0]
    return (markdown(rows) + f"\nThe real zoo (`{full.zoo}`, `python benchmarks/zoo_bench.py --zoo {full.zoo}`): "
            f"{full.programs:,} unique faithful programs from {full.attempted_for_zoo:,} attempts "
            f"(accepted {pct(full.accepted_share)}, unfaithful {pct(full.unfaithful_share)}, "
            f"> 40 weight tokens {pct(full.too_many_weight_tokens_share)}, timeout {pct(full.timeout_share)}, "
            f"memory {pct(full.memory_share)}, duplicates {full.duplicates}; besides, "
            f"{full.too_short_draws:,} raw draws pruned below 7 lines and redrawn) "
            f"in **{full.wall_hours:.2f} h** of wall time on {full.cpus_on_machine} cores with {full.workers} Ray "
            f"workers ({full.attempts_per_wall_s:.1f} attempts/s; one command, resumed {full.stretches - 1} "
            "times across sessions; issue target: 2 h).\n")


def _best_decompile_run(table: pd.DataFrame) -> pd.Series:
    """The validation row of our meta-model with the highest token accuracy (the thesis's metric)."""
    ours = table[(table.source == "ours") & (table.split == "validation")]
    return ours.loc[ours.raw_token_accuracy.idxmax()]


def _decompile_summary(table: pd.DataFrame) -> str:
    """The best run's numbers against the thesis's, in words."""
    ours = table[table.source == "ours"]
    val = _best_decompile_run(table)
    run = val.run
    test = ours[(ours.run == run) & (ours.split == "test")].iloc[0]
    thesis = table[table.source != "ours"].iloc[0]
    ops = pd.read_csv(RESULTS / "decompile_ops.csv")
    ops = ops[(ops.run == run) & (ops.split == "validation")].set_index("op").line_token_accuracy
    hardest = ops.sort_values()
    return (f"Best run (`{run}`, {val.model}, {val.parameters / 1e6:.1f} M parameters, {int(val.train_programs):,} "
            f"training programs): **{pct(val.raw_token_accuracy)} token accuracy on the validation split "
            f"({pct(test.raw_token_accuracy)} on test); the thesis: {100 * thesis.raw_token_accuracy:.2f} %**, with a "
            f"model {thesis.parameters / val.parameters:.0f} times larger. The trivial baseline gets "
            f"{pct(val.baseline_token_accuracy)} of the same tokens; on the tokens not fixed by position: "
            f"{pct(val.nonfixed_accuracy)} (baseline {pct(val.baseline_nonfixed_accuracy)}). Whole programs read: "
            f"{pct(val.raw_programs_ge_100)} (thesis {pct(thesis.raw_programs_ge_100)}). Hardest lines: "
            + ", ".join(f"{op} {pct(value)}" for op, value in hardest.head(2).items())
            + f" of their tokens right (easiest: {hardest.index[-1]} {pct(hardest.iloc[-1])}). Functional: "
            f"{pct(val.functional_accuracy)} of the decoded programs give the original's outputs, "
            f"{pct(val.functional_accuracy_nonconstant)} of the {pct(1 - val.constant_share)} whose output is not "
            "one constant.\n")


def decompile() -> str:
    table = pd.read_csv(RESULTS / "decompile.csv")
    rows = []
    for r in table.itertuples():
        ours = r.source == "ours"
        with_baseline = (lambda column: f"{pct(getattr(r, column))} ({pct(getattr(r, 'baseline_' + column))})"
                         if ours else pct(getattr(r, column)))
        rows.append({"": "ours" if ours else "thesis", "model": r.model,
                     "train programs": f"{int(r.train_programs):,}" if ours else "≥ 900k",
                     "split": f"{r.split} ({int(r.programs)})" if ours else r.split,
                     "token accuracy (baseline)": (f"{pct(r.raw_token_accuracy)} ({pct(r.baseline_token_accuracy)})"
                                                   if ours else pct(r.raw_token_accuracy)),
                     "read with the grammar": pct(r.token_accuracy),
                     "non-fixed tokens, grammar (baseline)": with_baseline("nonfixed_accuracy") if ours else "—",
                     "functional (non-constant programs)": f"{pct(r.functional_accuracy)} "
                                                           f"({pct(r.functional_accuracy_nonconstant)})" if ours
                     else "—",
                     **{f"≥ {t} % (baseline)": (f"{pct(getattr(r, f'raw_programs_ge_{t}'))} "
                                                f"({pct(getattr(r, f'baseline_programs_ge_{t}'))})" if ours
                                                else pct(getattr(r, f"raw_programs_ge_{t}")))
                        for t in (100, 90, 70, 50)}})
    runs = table[table.source == "ours"].drop_duplicates("run")
    trained = "; ".join(f"{r.model}: {int(r.steps):,} steps of 32 programs in {r.train_minutes:.0f} min "
                        f"({r.train_samples_per_s:.1f} samples/s median)" for r in runs.itertuples())
    return (markdown(rows) + "\n" + _decompile_summary(table)
            + f"\nTrained on 2 CPU cores ({trained}; the 345-program runs at nice 19 beside other jobs). The baseline "
            "is one grid for every program: each slot's most frequent token in the training split.\n")


# every injected TI run of the tiny presets (each must pass its task to get rows)
LEADERBOARD_COMMAND = "python analyses/leaderboard.py " + " ".join(
    f"--run runs/presets/{preset}/{task}_ti" for preset in ("tiny", "tiny-llama") for task in ("count", "dyck", "sum"))


def _analyses_importable() -> None:
    if str(ROOT / "analyses") not in sys.path:  # the analyses are scripts, not a package
        sys.path.insert(0, str(ROOT / "analyses"))


def circuits_leaderboard() -> str:
    """The per-method summary of results/circuits_leaderboard.csv and one line per metric (the leaderboard's own)."""
    _analyses_importable()
    from leaderboard import MEANINGS, method_summary

    board = pd.read_csv(RESULTS / "circuits_leaderboard.csv")
    targets = ", ".join(f"tier {tier}: {part.target.nunique()} targets" for tier, part in board.groupby("tier"))
    return (method_summary(board).to_markdown(index=False) + f"\n\n{targets}; every row in "
            "[`results/circuits_leaderboard.md`](results/circuits_leaderboard.md).\n\n"
            + "".join(f"- **{name}**: {meaning}\n" for name, meaning in MEANINGS.items()))


def _evidence_rows() -> list[tuple[str, str, str]]:
    compile_ = pd.read_csv(BENCH / "compile.csv")
    evals = pd.read_csv(BENCH / "eval.csv").iloc[0]
    decode = pd.read_csv(BENCH / "decode.csv").iloc[0]
    circuits = pd.read_csv(BENCH / "circuits.csv")
    full = pd.read_csv(BENCH / "zoo_full.csv").iloc[0]
    best = _best_decompile_run(pd.read_csv(RESULTS / "decompile.csv"))
    tier1 = pd.read_csv(RESULTS / "circuits_tier1.csv")
    auc = tier1.groupby("method")["edge_auc"].agg(["min", "max"])
    meets = (circuits.speedup >= 100) & (circuits.eap_edge_auc >= circuits.acdc_edge_auc - 0.05)
    slowest = circuits.loc[circuits.speedup.idxmin()]
    speedups = (f"{circuits.speedup.median():.0f}× faster (median over {len(circuits)} tier-1 targets; least "
                f"{slowest.speedup:.0f}× on {slowest.target}); meets the bar (≥ 100× at an edge AUC at most 0.05 "
                f"below ACDC's) on {int(meets.sum())} of {len(circuits)}")
    compression = pd.read_csv(RESULTS / "compression_sort_unique.csv")
    smallest = compression[compression.accuracy >= 1.0].sort_values("width").iloc[0]
    return [
        ("`benchmarks/results/compile.csv`", "`python benchmarks/compile_bench.py`",
         f"warm compile+convert ≤ {compile_.warm_compile_s.max():.2f} s per lib program; residual diff ≤ "
         f"{compile_.residual_max_diff.max():.1e}"),
        ("`benchmarks/results/tasks.csv`", "`python benchmarks/tasks_bench.py`",
         "depth / width / compile time of the task programs, their exact match on the test split and every suite"),
        ("`benchmarks/results/step.csv`", "`python benchmarks/step_bench.py`",
         "TI / FT+KL step time of the trainer's own step (20 interleaved repeats, median and IQR) and the "
         "compiled targets' share; the rows with a loader worker: `--loader-workers 1 --models tiny-gpt2,tiny-llama "
         "--tasks count`"),
        ("`benchmarks/results/inject.csv`", "`python benchmarks/inject_bench.py`",
         "trains the `tiny` preset runs (TI and FT+KL) and records steps / minutes to 95 % held-out accuracy"),
        ("`results/injection.md`", "`python analyses/injection.py` (after the line above)",
         "per run: strict/lenient test accuracy, OOD suites, decoded agreement per aligned layer, perplexity "
         "change; runs < 90 % marked FAILED"),
        *_run_figure_rows(),
        ("`benchmarks/results/eval.csv`", "`python benchmarks/eval_bench.py`",
         f"batched KV-cache greedy decoding {evals.speedup:.1f}× faster than one prompt at a time "
         f"({evals.prompts:,} {evals.task} prompts)"),
        ("`benchmarks/results/decode.csv`", "`python benchmarks/decode_bench.py`",
         f"decoding a {decode.tokens}-token prompt on SmolLM2-135M: {decode.median_ms:.0f} ms"),
        ("`results/table{1,2,3}.md`",
         "`python analyses/table1.py --runs runs/presets/smollm2` (2, 3 alike)",
         "the paper's tables on SmolLM2-135M with CPU-sized runs, paper numbers alongside"),
        ("`results/circuits_leaderboard.md`", f"`{LEADERBOARD_COMMAND}`",
         "one table of every method on every target of both tiers: edge and node AUC, MIB's CPR and CMD, spread "
         "over resamples, rank stability, seconds (and writes the two tier tables below from the same rows)"),
        ("`results/circuits_tier1.md`", "`python analyses/circuits.py --tier 1 --large-resamples 3`",
         f"{tier1.target.nunique()} compiled programs × {tier1.method.nunique()} methods × "
         f"{tier1.resamples.min()}–{tier1.resamples.max()} resamples: edge AUC "
         + ", ".join(f"{m} {auc.loc[m, 'min']:.2f}–{auc.loc[m, 'max']:.2f}" for m in auc.index)),
        ("`results/circuits_tier2.md`", "`python analyses/circuits.py --tier 2 --run RUN`",
         "tier-2 scores on an injected run (see the file for which run and its task accuracy)"),
        ("`benchmarks/results/circuits.csv`", f"`{_circuits_bench_command(circuits)}`",
         f"EAP vs ACDC ({circuits.acdc_thresholds.iloc[0]}-threshold sweep) on the same model and data: EAP "
         f"{speedups}; edge AUC ACDC {circuits.acdc_edge_auc.min():.2f}–"
         f"{circuits.acdc_edge_auc.max():.2f}, EAP {circuits.eap_edge_auc.min():.2f}–{circuits.eap_edge_auc.max():.2f}"),
        ("`benchmarks/results/zoo.csv`", "`python benchmarks/zoo_bench.py`",
         "decompiler zoo generation with 1 and 2 Ray workers: attempts per CPU-second, accepted and rejected shares"),
        ("`benchmarks/results/zoo_full.csv`", "`python benchmarks/zoo_bench.py --zoo runs/zoo-50k`",
         f"the {full.programs:,}-program zoo made in {full.wall_hours:.2f} h on 2 cores (from its shards' "
         "completion times), accepted and rejected shares"),
        ("`results/decompile.md`",
         "`python analyses/decompile.py --run runs/decompile/model-50k --run runs/decompile/model "
         "--run runs/decompile/model-small`",
         f"the decompiler in the layout of the thesis's Table 9.1: token accuracy {pct(best.raw_token_accuracy)} on "
         f"the validation split (thesis 73.04 %, trivial baseline {pct(best.baseline_token_accuracy)}), non-fixed "
         "and functional accuracy, per-operation accuracy"),
        ("`results/compression_sort_unique.csv`",
         "`workbench compress --compiled sort_unique --dims 8,12,16 --steps 800`",
         f"{pct(smallest.accuracy)} outputs kept at d = {smallest.width} of D = {smallest.D}"),
    ]


def _circuits_bench_command(circuits: pd.DataFrame) -> str:
    """The command that measured ``circuits`` (``--targets`` when not every tier-1 target was measured)."""
    _analyses_importable()
    from circuits import TIER1

    command = "python benchmarks/circuits_bench.py"
    return command if set(circuits.target) == set(TIER1) else f"{command} --targets {','.join(circuits.target)}"


def _run_figure_rows() -> list[tuple[str, str, str]]:
    """One row per ``results/figures_*`` folder that ``analyses/run_figures.py`` wrote."""
    rows = []
    for folder in sorted(RESULTS.glob("figures_*")):
        command = re.search(r"Regenerate: `([^`]+)`", (folder / "README.md").read_text())[1]
        ablation = pd.read_csv(folder / "noise_ablation.csv")
        at_one = ablation[ablation.relative_norm == 1.0].groupby("subspace")[["accuracy", "answer_loss"]].mean()
        answer, random_ = at_one.loc["answer subspace"], at_one.loc["random subspace"]
        rows.append((f"`results/{folder.name}/`", f"`{command}`",
                     "decoded variables (Figure 6) and the noise ablation (Figure 3) of the run: at noise of the "
                     f"residual's mean norm, accuracy {pct(answer.accuracy)} and answer loss {answer.answer_loss:.3f} "
                     f"in the answer subspace vs {pct(random_.accuracy)} and {random_.answer_loss:.3f} in random "
                     "subspaces of the same rank"))
    return rows


def evidence() -> str:
    return markdown([{"file": f, "command": c, "what it shows (2 CPU cores)": s} for f, c, s in _evidence_rows()])


BLOCKS: dict[str, Callable[[], str]] = {"tasks": tasks, "injection-runs": injection_runs,
                                         "injection-unfinished": injection_unfinished,
                                         "answer-tokens": answer_tokens, "unfinished-agreement": unfinished_agreement,
                                         "step-times": step_times,
                                         "zoo": zoo, "decompile": decompile,
                                         "circuits-leaderboard": circuits_leaderboard, "evidence": evidence}


def render(text: str) -> str:
    """``text`` with every generated block rewritten; an unknown block name is an error."""

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise SystemExit(f"README block {name!r} has no generator; known: {', '.join(BLOCKS)}")
        return match.group(1) + BLOCKS[name]() + match.group(4)

    return BLOCK.sub(fill, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is not what the results say")
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if args.check:
        if wanted != current:
            print("README.md differs from the results files: run `python analyses/readme.py`", file=sys.stderr)
            sys.exit(1)
        return
    README.write_text(wanted)
    print(f"wrote {README} ({len(BLOCK.findall(wanted))} generated blocks)")


if __name__ == "__main__":
    main()
