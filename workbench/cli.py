"""The ``workbench`` command: one sub-command per pipeline stage.

    workbench compile --program reverse --input abc
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from workbench.errors import WorkbenchError

# workbench.tasks.TASKS's names, spelled out: importing the tasks loads tracr and JAX (seconds) (tested equal).
TASK_NAMES = ("dyck", "count", "sum", "dyck-paper")


def _compile(args: argparse.Namespace) -> None:
    from workbench.compiled import LIB_PROGRAMS, compile_lib, get_lib_program
    from workbench.compiled.figures import write_residual_figure

    if args.list:
        for name, entry in LIB_PROGRAMS.items():
            vocab = " ".join(sorted(map(str, entry.vocab)))
            print(f"{name:18s} vocab {{{vocab}}}  max_seq_len {entry.max_seq_len}  {entry.description}")
        return
    if not args.program or args.input is None:
        raise WorkbenchError("compile needs --program NAME and --input TEXT (or --list to see the programs)")
    _at_least(1, max_seq_len=args.max_seq_len)
    if not args.input.strip():
        raise WorkbenchError("--input is empty; give the tokens to run, e.g. --input abc or --input '3 1 2'")
    entry = get_lib_program(args.program)
    compiled = compile_lib(entry.name, causal=args.causal, max_seq_len=args.max_seq_len, use_cache=not args.no_cache)
    tokens = compiled.parse_input(args.input)
    outputs = compiled.run(tokens)
    cfg = compiled.model.cfg
    print(f"program   {entry.name} ({'causal' if args.causal else 'bidirectional'}): {entry.description}")
    print(f"model     {cfg.n_layers} blocks, {cfg.n_heads} heads, d_model {cfg.d_model} (residual width), "
          f"d_mlp {cfg.d_mlp}, max_seq_len {compiled.max_seq_len}")
    width = max(len(_fmt(t)) for t in [*tokens, *outputs]) + 2
    print("input    " + "".join(f"{_fmt(t):>{width}}" for t in tokens))
    print("output   " + "".join(f"{_fmt(o):>{width}}" for o in outputs))
    figure = Path(args.figure or f"compile_{entry.name}.html")
    write_residual_figure(compiled, tokens, figure)
    print(f"figure    {figure} (residual stream per layer, slider over layers)")


def _tasks(args: argparse.Namespace) -> None:
    from workbench.tasks import TASKS, get_task

    if args.action == "list" or args.task is None:
        for name, task in TASKS.items():
            print(f"{name:6s} {task.description}\n       e.g. {task.prompt_example}")
        return
    task = get_task(args.task)
    compiled = task.compile()
    cfg = compiled.model.cfg
    print(f"task {task.name}: {task.description}")
    print(f"compiled program: {cfg.n_layers} blocks, residual width {cfg.d_model}, {len(task.compiled_vocab)} "
          f"compiled tokens, context {task.max_seq_len}, causal")
    groups = [(split, "in distribution", task.split(split, args.n, args.seed)) for split in ("train", "test")]
    groups += [(name, ("supported" if suite.supported else "unsupported") + f": {suite.description}",
                task.suite(name, args.n, args.seed)) for name, suite in task.suites().items()]
    for name, about, examples in groups:
        print(f"\n[{name}] {about}")
        answers = task.compiled_answers(compiled, examples)
        for example, answer in zip(examples, answers):
            shown = "(longer than the compiled context)" if answer is None else answer
            mark = "ok" if answer == example.label else "WRONG"
            print(f"  {example.prompt}  reference {example.label!r}  compiled {shown!r}  {mark}")


# Options of ``train`` that map one-to-one onto InjectionConfig fields (argparse dest = field name).
TRAIN_FIELDS = ("task", "model", "method", "steps", "task_batch", "text_batch", "text_tokens", "lr_model", "lr_map",
                "checkpoint_every", "layer_map", "seed", "alignment_reduction", "tiny_layers", "tiny_d_model",
                "lr_schedule", "warmup_steps", "grad_clip", "eval_every", "eval_prompts", "target_accuracy",
                "target_agreement", "roll_after", "roll_ramp", "prompts", "train_pool", "supervise_end", "loader_workers")


def _train(args: argparse.Namespace) -> None:
    from workbench.inject.config import InjectionConfig
    from workbench.inject.presets import preset
    from workbench.inject.trainer import train

    fields = preset(args.preset, args.task) if args.preset else {}
    fields.update({k: getattr(args, k) for k in TRAIN_FIELDS if getattr(args, k) is not None})
    if args.text is not None:
        fields["text_source"] = args.text
    if "steps" not in fields:
        raise WorkbenchError("train needs --steps N (or a --preset that sets it)")
    config = InjectionConfig(**fields)
    result = train(config, args.out, resume=args.resume)
    checks = [f"{name} {result[name]:.1%}" for name in ("accuracy", "agreement") if result[name] is not None]
    reached = f", held-out {', '.join(checks)}" if checks else ""
    print(f"trained {result['step']} steps of {config.method} on {result['model']}{reached}; run folder {args.out}")


def _demo(args: argparse.Namespace) -> None:
    from workbench.demo import run_demo

    run_demo(args.out, **({"steps": args.steps} if args.steps else {}))


def _eval(args: argparse.Namespace) -> None:
    from workbench.evaluate.runs import evaluate_run

    _at_least(1, n=args.n, ppl_lines=args.ppl_lines, benchmark_limit=args.benchmark_limit)
    _existing_files(shakespeare=args.shakespeare, sst2=args.sst2, mrpc=args.mrpc, lambada=args.lambada)
    for name in ("sst2", "mrpc", "lambada"):
        path = getattr(args, name)
        if path and Path(path).is_file() and Path(path).suffix not in (".jsonl", ".csv", ".tsv"):
            raise WorkbenchError(f"--{name} {path}: use a .jsonl, .csv or .tsv file or a saved datasets folder")
    local = {"sst2": args.sst2, "mrpc": args.mrpc, "lambada": args.lambada}
    result = evaluate_run(args.run_dir, original=args.original, suites=args.suites, n=args.n,
                          shakespeare=args.shakespeare, ppl_lines=args.ppl_lines, benchmarks=local,
                          benchmark_limit=args.benchmark_limit)
    print(f"{result['method']} {result['model']} on {result['task']} (step {result['step']}), {args.n} prompts per set")
    print(result["table"].drop(columns=["description"]).to_string(index=False))
    ppl = result["perplexity"]
    print(f"perplexity per line {ppl['per_line_ppl']:.2f} (token-level {ppl['token_ppl']:.2f}) on "
          f"{result['perplexity_corpus']}")
    for name in ("sst2", "mrpc", "lambada"):
        print(f"{name.upper():8s} {result[name]}")
    print(f"written to {result['out']}/ (accuracy.csv, summary.json, summary.md)")


def _decode(args: argparse.Namespace) -> None:
    from workbench.decode.views import check_prompt, view_compiled, view_run, write_view
    from workbench.tasks import get_task

    if (args.run_dir is None) == (args.compiled is None):
        raise WorkbenchError("decode needs a RUN_DIR or --compiled TASK (one of them)")
    if not args.prompt.strip():
        raise WorkbenchError('--prompt is empty; give a prompt of the task, e.g. --prompt "211 + 123 ="')
    _at_least(1, n=args.n)
    if args.compiled:
        task = get_task(args.compiled)
        check_prompt(task, args.prompt)  # before the compile: a bad prompt fails at once
        compiled = task.compile()
        view = view_compiled(task, compiled, args.prompt)
        out = Path(args.out or f"decode_{task.name}")
    else:
        from workbench.evaluate.runs import load_trained_map

        loaded, config, linear_map, mapping, _ = load_trained_map(args.run_dir)
        task = get_task(config.task)
        compiled = task.compile()
        view = view_run(task, compiled, loaded.model, linear_map, loaded.tokenizer, mapping, args.prompt)
        out = Path(args.out or Path(args.run_dir) / "decode")
    table = view.tables[-1]
    with pd_options():
        print(f"decoded variables at {view.layers[-1]}:")
        print(table.to_string())
    written = write_view(view, compiled, out, png=args.png)
    if args.run_dir is not None:
        from workbench.decode import agreement

        shares = agreement(loaded.model, linear_map, loaded.tokenizer, task, compiled, task.split("test", args.n),
                           mapping)
        print(f"agreement with the compiled program over {args.n} test prompts (mean per layer): "
              + ", ".join(f"{share:.1%}" for share in shares.mean()))
        shares.rename_axis("variable").to_csv(out / "agreement.csv")
        written.append(out / "agreement.csv")
    print("written: " + ", ".join(str(p) for p in written))


def _ablate(args: argparse.Namespace) -> None:
    from workbench.ablate import noise_ablation
    from workbench.evaluate.runs import load_trained_map
    from workbench.plots import ablation_figure, write_figure
    from workbench.tasks import get_task

    norms = _numbers(args.norms, "norms", float, example="0,1,5,10")
    if any(n < 0 or n != n or n == float("inf") for n in norms):
        raise WorkbenchError(f"--norms {args.norms!r}: noise norms must be finite and >= 0, e.g. --norms 0,1,5,10")
    _at_least(1, seeds=args.seeds, n=args.n)
    loaded, config, linear_map, mapping, _ = load_trained_map(args.run_dir)
    task = get_task(config.task)
    compiled = task.compile()
    table = noise_ablation(loaded.model, linear_map, compiled.dims_of(compiled.output_variable), task,
                           loaded.tokenizer, compiled, task.split("test", args.n), mapping, norms, args.seeds)
    out = Path(args.run_dir) / "ablation"
    out.mkdir(exist_ok=True)
    table.to_csv(out / "noise_ablation.csv", index=False)
    write_figure(ablation_figure(table), out / "noise_ablation", png=args.png)
    print(table.groupby(["subspace", "norm"])[["accuracy", "answer_loss"]].mean().to_string())
    print(f"written: {out}/noise_ablation.csv, noise_ablation.html")


def _compress(args: argparse.Namespace) -> None:
    import torch

    from workbench.compress import sweep
    from workbench.compress.figures import projection_figure, sweep_figure
    from workbench.plots import write_figure

    widths = _numbers(args.dims, "dims", int, example="8,16,32")
    _at_least(1, steps=args.steps, n=args.n, **{f"dims entry {i + 1}": d for i, d in enumerate(widths)})
    table, results, compiled, inputs = sweep(args.compiled, widths, steps=args.steps, n_eval=args.n)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"compression_{args.compiled.removeprefix('make_')}"
    table.to_csv(out / f"{stem}.csv", index=False)
    write_figure(sweep_figure(table, args.compiled), out / f"{stem}_sweep", png=args.png)
    residuals = torch.cat([list(compiled.residuals(tokens).values())[-1] for tokens in inputs[:50]])
    smallest = results[min(widths)]
    write_figure(projection_figure(smallest.w, residuals, compiled.residual_labels, args.compiled),
                 out / f"{stem}_projection", png=args.png)
    print(table[["program", "D", "width", "steps", "accuracy", "final_loss"]].to_string(index=False))
    print(f"written: {out / stem}.csv, {stem}_sweep.html, {stem}_projection.html")


def _circuits(args: argparse.Namespace) -> None:
    from workbench.circuits.benchmark import benchmark, compiled_target, run_target, summary_row, write_results

    if (args.compiled is None) == (args.run_dir is None):
        raise WorkbenchError("give exactly one of --compiled TASK_OR_PROGRAM and --run RUN_DIR")
    _at_least(1, resamples=args.resamples, n=args.n, ig_steps=args.ig_steps)
    thresholds = _numbers(args.thresholds, "thresholds", float, example="0.001,0.01,0.1") if args.thresholds else None
    if thresholds and any(t != t or abs(t) == float("inf") for t in thresholds):
        raise WorkbenchError(f"--thresholds {args.thresholds!r}: ACDC thresholds must be finite numbers, "
                             "e.g. --thresholds 0.001,0.01,0.1")
    if args.compiled:
        target = compiled_target(args.compiled, ablation=args.ablation or "zero")
        out = Path(args.out or f"runs/circuits/{target.name}")
    else:
        target = run_target(args.run_dir, ablation=args.ablation or "resample")
        out = Path(args.out or args.run_dir / "circuits")
    print(target.describe())
    options = {"eap-ig": {"steps": args.ig_steps}}
    if thresholds:
        options["acdc"] = {"thresholds": thresholds}
    summary, per_resample, curves = benchmark(target, args.methods, resamples=args.resamples, n=args.n,
                                              progress=True, options=options)
    written = write_results(out, target, summary, per_resample, curves)
    with pd_options():
        print(summary_row(target, summary).drop(columns=["target"]).round(4).to_string(index=False))
    print("written: " + ", ".join(str(p) for p in written))


def _report(args: argparse.Namespace) -> None:
    import time

    from workbench.report import compare_report, compiled_report, run_report

    if sum(x is not None for x in (args.run_dir, args.compare, args.compiled)) != 1:
        raise WorkbenchError("report needs one of RUN_DIR, --compare RUN_A RUN_B or --compiled TASK")
    if args.circuits is not None and args.compiled is None:
        raise WorkbenchError("--circuits is the tier-1 results folder of --compiled TASK; leave it out for a run")
    if args.out is not None and args.out.suffix != ".html":
        raise WorkbenchError(f"--out {args.out}: give an .html file, e.g. --out report.html")
    if args.screenshot is not None and args.screenshot.suffix != ".png":
        raise WorkbenchError(f"--screenshot {args.screenshot}: give a .png file, e.g. --screenshot report.png")
    start = time.perf_counter()
    if args.run_dir is not None:
        page, out = run_report(args.run_dir), args.out or args.run_dir / "report.html"
    elif args.compare is not None:
        run_a, run_b = args.compare
        page, out = compare_report(run_a, run_b), args.out or Path(f"report_{run_a.name}_vs_{run_b.name}.html")
    else:
        page, out = compiled_report(args.compiled, args.circuits), args.out or Path(f"report_{args.compiled}.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page.html(), encoding="utf-8")
    print(f"report    {out} ({out.stat().st_size / 1e6:.1f} MB, {len(page.sections)} sections, "
          f"{len(page.figures)} figures, {time.perf_counter() - start:.1f} s)")
    for command in page.missing:
        print(f"missing   `{command}` would add a section's inputs")
    if args.screenshot is not None:
        from workbench.report.browser import Browser, missing_browser

        reason = missing_browser()
        if reason:
            raise WorkbenchError(f"--screenshot needs a headless Chromium: {reason}; the report itself is saved at {out}")
        browser = Browser()
        try:
            rendered = browser.open(out)
            browser.screenshot(args.screenshot)
        finally:
            browser.close()
        print(f"screenshot {args.screenshot} ({len(rendered.plots)} figures drawn, "
              f"{len(rendered.errors)} browser errors)")


def _zoo_generate(args: argparse.Namespace) -> None:
    import math

    from workbench.decompile.generator import GeneratorConfig
    from workbench.decompile.zoo import ZooConfig, generate_zoo

    _at_least(1, n=args.n, shard_size=args.shard_size, n_inputs=args.n_inputs, ops=args.ops,
              min_length=args.min_length, vocab_min=args.vocab_min, vocab_max=args.vocab_max,
              max_seq_len=args.max_seq_len)
    _at_least(0, workers=args.workers, max_weight_tokens=args.max_weight_tokens, memory_mb=args.memory_mb)
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise WorkbenchError(f"--timeout must be a positive number of seconds (got {args.timeout}); e.g. --timeout 5")
    if not 0 <= args.numeric_share <= 1:
        raise WorkbenchError(f"--numeric-share must be in [0, 1] (got {args.numeric_share}); e.g. --numeric-share 0.5")
    if args.min_length > args.ops:
        raise WorkbenchError(f"--min-length {args.min_length} is more than --ops {args.ops}; lower it or raise --ops")
    if args.vocab_min > args.vocab_max:
        raise WorkbenchError(f"--vocab-min {args.vocab_min} is more than --vocab-max {args.vocab_max}")
    if args.workers == 0 and args.address:
        raise WorkbenchError("--workers 0 runs without Ray, --address joins a Ray cluster: give one of them")
    generator = GeneratorConfig(n_ops=args.ops, min_length=args.min_length, vocab_min=args.vocab_min,
                                vocab_max=args.vocab_max, numeric_share=args.numeric_share,
                                max_seq_len=args.max_seq_len)
    config = ZooConfig(generator=generator, seed=args.seed, causal=args.causal, n_inputs=args.n_inputs,
                       timeout_s=args.timeout, memory_mb=args.memory_mb, max_weight_tokens=args.max_weight_tokens,
                       shard_size=args.shard_size)
    summary = generate_zoo(args.n, args.out, config, workers=args.workers, address=args.address)
    _print_zoo_counts(summary)
    print(f"zoo       {args.out} (show it with `workbench zoo show {args.out}`)")


def _print_zoo_counts(summary: dict) -> None:
    attempted = max(summary["attempted"], 1)
    rejected = ", ".join(f"{reason} {count}" for reason, count in summary["rejected"].items() if count)
    print(f"programs  {summary['programs']} ({', '.join(f'{k} {v}' for k, v in sorted(summary['splits'].items()))})")
    print(f"attempted {summary['attempted']} programs: accepted {summary['accepted']} "
          f"({100 * summary['accepted'] / attempted:.1f} %), duplicates {summary['duplicates']}")
    print(f"rejected  {rejected or 'none'} (too_short counts raw draws before a program was kept)")
    if summary.get("shard_seconds"):
        print(f"speed     {summary['attempted'] / summary['shard_seconds']:.2f} programs/s per worker "
              f"({summary['shards']} shards, {summary['shard_seconds']:.0f} worker-seconds)")


def _zoo_show(args: argparse.Namespace) -> None:
    import json
    from collections import Counter

    from workbench.decompile.encoding import decode
    from workbench.decompile.zoo import generation_time, grid_of_row, load_zoo, program_of_row, zoo_figure

    _at_least(0, examples=args.examples)
    frame = load_zoo(args.dir, columns=["tokens", "program", "n_layers", "n_weight_tokens"])
    summary_path = Path(args.dir) / "summary.json"
    if summary_path.exists():
        _print_zoo_counts(json.loads(summary_path.read_text()))
        seconds, stretches = generation_time(args.dir)
        print(f"made in   {seconds / 3600:.2f} h = {seconds / 60:.1f} min of wall time ({stretches} stretch{'es' if stretches > 1 else ''}; "
              "from the shards' completion times, pauses over 5 min left out)")
    else:
        print(f"programs  {len(frame)}")
    if len(frame):
        lengths = Counter(int(n) for n in frame["n_lines"])
        ops = Counter(t for tokens in frame["tokens"] for t in list(tokens)[::5] if t not in ("START", "END"))
        print("lengths   " + "  ".join(f"{k}:{lengths[k]}" for k in sorted(lengths)))
        print("ops       " + "  ".join(f"{k} {v}" for k, v in ops.most_common()))
        print(f"layers    mean {frame['n_layers'].mean():.1f}, weight tokens mean {frame['n_weight_tokens'].mean():.1f}"
              f" (max {frame['n_weight_tokens'].max()})")
    figure = Path(args.figure) if args.figure else Path(args.dir) / "zoo.html"
    from workbench.plots import write_figure

    figure = write_figure(zoo_figure(frame), figure)[0]  # self-contained: opens offline
    print(f"figure    {figure} (length and operation histograms)")
    for _, row in frame.head(args.examples).iterrows():
        program, grid = program_of_row(row), grid_of_row(row)
        print(f"\nprogram {row['index']} ({row['split']}, vocab {program.vocab}, {row['n_layers']} layers, "
              f"{row['n_weight_tokens']} weight tokens)")
        canonical = decode(grid, program.vocab, program.max_seq_len)  # the same program, named as its tokens
        text = ["", *canonical.to_text().splitlines(), ""]
        width = max(len(t) for t in text) + 4
        for left, tokens in zip(text + [""] * (len(grid) - len(text)), grid):
            print(f"  {left:<{width}}{' '.join(tokens)}")


def _decompile_train(args: argparse.Namespace) -> None:
    import math

    from workbench.decompile.metamodel import MetaModelConfig
    from workbench.decompile.train import TrainConfig, train

    _at_least(1, steps=args.steps, batch_size=args.batch_size, layers=args.layers, d_model=args.d_model,
              heads=args.heads, eval_programs=args.eval_programs, checkpoint_every=args.checkpoint_every)
    _at_least(0, warmup_steps=args.warmup_steps, eval_every=args.eval_every, train_programs=args.train_programs)
    for name in ("lr", "weight_decay", "grad_clip", "noise", "dropout", "input_dropout"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            raise WorkbenchError(f"--{name.replace('_', '-')} must be a finite number >= 0 (got {value})")
    if not (args.zoo / "index.parquet").exists():
        raise WorkbenchError(f"--zoo {args.zoo} is not a zoo (no index.parquet); make one with "
                             f"`workbench zoo generate --n N --out {args.zoo}`")
    model = MetaModelConfig(n_layers=args.layers, d_model=args.d_model, n_heads=args.heads, dropout=args.dropout,
                            input_dropout=args.input_dropout)
    config = TrainConfig(model=model, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, grad_clip=args.grad_clip,
                         noise=args.noise, seed=args.seed, eval_every=args.eval_every,
                         eval_programs=args.eval_programs, checkpoint_every=args.checkpoint_every,
                         train_programs=args.train_programs)
    result = train(config, args.zoo, args.out, resume=args.resume)
    print(f"trained the meta-model {result['step']} steps; run folder {args.out} "
          f"(score it with `workbench decompile eval {args.out} --split test`)")


def _decompile_eval(args: argparse.Namespace) -> None:
    from workbench.decompile.evaluate import evaluate_run

    _at_least(1, n_inputs=args.n_inputs, limit=args.limit)
    summary = evaluate_run(args.run_dir, args.split, functional=not args.no_functional, n_inputs=args.n_inputs,
                           limit=args.limit)
    print(f"{summary['programs']} {args.split} programs, meta-model at step {summary['step']}")
    print(f"{'':22s}{'meta-model':>12s}{'baseline':>12s}")
    print(f"{'token accuracy':22s}{pct(summary['token_accuracy']):>12s}{pct(summary['baseline_token_accuracy']):>12s}")
    print(f"{'non-fixed accuracy':22s}{pct(summary['nonfixed_accuracy']):>12s}"
          f"{pct(summary['baseline_nonfixed_accuracy']):>12s}")
    for threshold in (100, 90, 80, 70, 60, 50):
        key = f"programs_ge_{threshold}"
        print(f"{f'programs >= {threshold} %':22s}{pct(summary[key]):>12s}{pct(summary['baseline_' + key]):>12s}")
    print(f"{'argmax per slot':22s}{pct(summary['raw_token_accuracy']):>12s}  (the thesis's reading)")
    if "functional_accuracy" in summary:
        print(f"functional accuracy   {pct(summary['functional_accuracy'])} (invalid {pct(summary['functional_invalid'])}"
              f", different outputs {pct(summary['functional_different'])}, "
              f"not compilable {pct(summary['functional_not_compilable'])}); "
              f"{pct(summary['functional_accuracy_nonconstant'])} of the programs whose output is not one constant "
              f"({pct(summary['constant_share'])} are)")
    print("by op                 " + ", ".join(f"{r['op']} {pct(r['op_accuracy'])} ({r['lines']} lines)"
                                               for r in summary["by_op"]))
    print(f"written: {args.run_dir}/eval_{args.split}.json, eval_{args.split}_programs.csv")


def _decompile_show(args: argparse.Namespace) -> None:
    from workbench.decompile.evaluate import decompile_program

    _at_least(1, n_inputs=args.n_inputs)
    result = decompile_program(args.run_dir, args.program, n_inputs=args.n_inputs)
    print(f"{result['source']}: vocab {result['program'].vocab}, max_seq_len {result['program'].max_seq_len}; "
          f"meta-model at step {result['step']}")
    width = max(len(" ".join(row)) for row in result["true"]) + 4
    print(f"  {'true':<{width}}predicted")
    for r, true in enumerate(result["true"]):
        predicted = result["predicted"][r]
        marks = " ".join(p if p == t else f"[{p}]" for p, t in zip(predicted, true))
        print(f"  {' '.join(true):<{width}}{marks}")
    print("  ([token] marks a wrong prediction)")
    print(f"token accuracy {pct(result['token_accuracy'])}, non-fixed {pct(result['nonfixed_accuracy'])}")
    outcome = result["functional"]
    print(f"functionally equal: {'yes' if outcome.equal else 'no'} ({outcome.status}"
          f"{': ' + outcome.detail if outcome.detail else ''})")


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _at_least(low: int, **values) -> None:
    """Refuse an integer option below ``low`` (``None`` means the option was not given)."""
    for name, value in values.items():
        if value is not None and value < low:
            option = name if " " in name else "--" + name.replace("_", "-")
            raise WorkbenchError(f"{option} must be at least {low} (got {value})")


def _numbers(text: str, option: str, kind: type, example: str) -> list:
    """A comma list of ints or floats, or a one-line error naming the bad entry and a valid example."""
    entries = [entry.strip() for entry in text.split(",")]
    values = []
    for entry in entries:
        try:
            values.append(kind(entry))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise WorkbenchError(f"--{option} {text!r}: {entry!r} is not {what}; give a comma list such as "
                                 f"--{option} {example}") from None
    return values


def _existing_files(**paths) -> None:
    """Refuse a path option that names nothing (a misspelled path is an error, not a missing benchmark)."""
    for name, path in paths.items():
        if path is not None and not Path(path).exists():
            raise WorkbenchError(f"--{name} {path}: no such file or folder; fix the path or leave --{name} out")


def pd_options():
    import pandas as pd

    return pd.option_context("display.max_columns", 40, "display.width", 200)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines splits on


def _one_line(text: str) -> str:
    """``text`` with each line break escaped (``\\n``): a message quoting an argument stays one line."""
    return "".join(repr(c)[1:-1] if c in _LINE_BREAKS else c for c in text)


class _Parser(argparse.ArgumentParser):
    """Argument errors are one line on stderr (problem, then where the usage is) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {_one_line(message)}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workbench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a tracr lib program, print its output, write its residual figure")
    p.add_argument("--program", help="name in tracr.compiler.lib (see --list)")
    p.add_argument("--input", help="input tokens: characters ('abc') or whitespace-separated ('3 1 2')")
    p.add_argument("--causal", action="store_true", help="compile with causal attention")
    p.add_argument("--max-seq-len", type=int, default=None, help="override the program's registered max_seq_len")
    p.add_argument("--figure", help="HTML file for the residual heatmap (default compile_<program>.html)")
    p.add_argument("--no-cache", action="store_true", help="recompile instead of using the disk cache")
    p.add_argument("--list", action="store_true", help="list the available programs and exit")
    p.set_defaults(run=_compile)

    p = sub.add_parser("tasks", help="list the tasks, or show examples of one with compiled and reference answers")
    p.add_argument("action", choices=["list", "show"])
    p.add_argument("task", nargs="?", choices=TASK_NAMES, help="the task to show")
    p.add_argument("--n", type=int, default=3, help="examples per split and suite (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_tasks)

    p = sub.add_parser("train", help="inject a task into a model (TI) or fine-tune it (FT+KL); torchrun for DDP")
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--preset", help="named CPU settings (see the README): tiny, tiny-llama, smollm2 (count; not yet "
                   "injecting); options given explicitly override it")
    p.add_argument("--model", help="smollm2-135m (default), gpt2[-medium|-large|-xl], tiny-gpt2, tiny-llama or a "
                   "local Hugging Face folder")
    p.add_argument("--method", choices=["ti", "ft"])
    p.add_argument("--steps", type=int)
    p.add_argument("--out", required=True, type=Path, help="run folder (config, metrics.jsonl, checkpoints/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--task-batch", type=int)
    p.add_argument("--text-batch", type=int)
    p.add_argument("--text-tokens", type=int)
    p.add_argument("--lr-model", type=float)
    p.add_argument("--lr-map", type=float)
    p.add_argument("--lr-schedule", choices=["constant", "cosine"])
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--grad-clip", type=float, help="max gradient norm (0: none)")
    p.add_argument("--roll-after", type=int, help="steps trained without the roll first (TI)")
    p.add_argument("--roll-ramp", type=int, help="then steps over which the rolled share rises to 1 (TI; 0: at once)")
    p.add_argument("--supervise-end", action=argparse.BooleanOptionalAction, default=None,
                   help="also train the end-of-text token after the answer (teaches a model to stop)")
    p.add_argument("--eval-every", type=int, help="steps between held-out accuracy checks (0: none)")
    p.add_argument("--eval-prompts", type=int, help="held-out test prompts per check")
    p.add_argument("--target-accuracy", type=float, help="stop once the held-out accuracy reaches it (0: never)")
    p.add_argument("--target-agreement", type=float,
                   help="TI: stop only once the held-out decoded agreement also reaches it (0: accuracy alone)")
    p.add_argument("--prompts", choices=["fresh", "pool"], help="fresh prompts (default) or a cycled pool")
    p.add_argument("--train-pool", type=int, help="pool size with --prompts pool")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--loader-workers", type=int,
                   help="processes building the next batches while a step trains (default 0: in the loop; "
                        "1 on a GPU machine with idle CPU cores)")
    p.add_argument("--text", help="KL text: brown (offline default), fineweb (hub), or a local file/folder")
    p.add_argument("--layer-map", help="model blocks aligned with the compiled layers: paper (0..k), spread (over "
                   "the depth) or the blocks, e.g. 0,7,14,21 (the roll sits after the last)")
    p.add_argument("--alignment-reduction", choices=["sum", "mean"])
    p.add_argument("--tiny-layers", type=int, help="depth of tiny-* models")
    p.add_argument("--tiny-d-model", type=int, help="width of tiny-* models")
    p.add_argument("--seed", type=int)
    p.set_defaults(run=_train)

    p = sub.add_parser("eval", help="evaluate a run: task accuracy and OOD suites (model and compiled program), "
                       "perplexity, SST-2 / MRPC / LAMBADA")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--original", action="store_true", help="evaluate the run's original (untrained) model")
    p.add_argument("--suites", default="all", help="'all', '' or a comma list of the task's OOD suites")
    p.add_argument("--n", type=int, default=200, help="prompts per split/suite (default 200)")
    p.add_argument("--shakespeare", help="Tiny-Shakespeare input.txt (default: the offline Gutenberg plays)")
    p.add_argument("--ppl-lines", type=int, default=300, help="lines sampled for perplexity (default 300)")
    p.add_argument("--sst2", help="local SST-2 validation file (.jsonl/.csv/.tsv) or saved datasets folder")
    p.add_argument("--mrpc", help="local MRPC validation file or folder")
    p.add_argument("--lambada", help="local LAMBADA test file or folder")
    p.add_argument("--benchmark-limit", type=int, help="use only the first N rows of each benchmark")
    p.set_defaults(run=_eval)

    p = sub.add_parser("decode", help="decode a prompt's residual into program variables (tables + heatmaps)")
    p.add_argument("run_dir", nargs="?", type=Path, help="a TI run folder (uses its trained map)")
    p.add_argument("--compiled", choices=TASK_NAMES, help="decode the compiled program instead")
    p.add_argument("--prompt", required=True, help='e.g. "Are parentheses here correctly matched? [()].Answer:"')
    p.add_argument("--out", help="folder for the figures (default RUN_DIR/decode or decode_<task>)")
    p.add_argument("--n", type=int, default=200, help="test prompts for the agreement of each variable with the "
                   "compiled program per layer, agreement.csv (RUN_DIR only; default 200)")
    p.add_argument("--png", action="store_true", help="also write PNG files (needs kaleido and Chromium)")
    p.set_defaults(run=_decode)

    p = sub.add_parser("ablate", help="noise in the answer subspace vs random subspaces (paper Figure 3)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--norms", default="0,1,2,5,10,30")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--n", type=int, default=100, help="test prompts")
    p.add_argument("--png", action="store_true")
    p.set_defaults(run=_ablate)

    p = sub.add_parser("compress", help="tracr §5: compress a compiled residual to widths d (trained projection)")
    p.add_argument("--compiled", required=True, help="a task (dyck, count, sum) or a tracr lib program")
    p.add_argument("--dims", default="8,16,32", help="comma list of compressed widths")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--n", type=int, default=200, help="random inputs for the accuracy")
    p.add_argument("--out", default="results", help="folder for compression_<program>.csv and figures")
    p.add_argument("--png", action="store_true")
    p.set_defaults(run=_compress)

    p = sub.add_parser("circuits", help="score ACDC, EAP, EAP-IG, node patching and random against the known "
                       "circuit of a compiled program (tier 1) or an injected run (tier 2)")
    p.add_argument("--compiled", help="a task (dyck, count, sum) or a tracr lib program (reverse, make_sort, ...)")
    p.add_argument("--run", type=Path, dest="run_dir",
                   help="a TI run folder (layer-level graph, truth through its layer map)")
    p.add_argument("--methods", default="acdc,eap,eap-ig,patch,random", help="comma list (default: all five)")
    p.add_argument("--ablation", choices=["zero", "mean", "resample"],
                   help="default: zero for --compiled (what the tier-1 truth is exact for), resample for --run")
    p.add_argument("--resamples", type=int, default=5, help="independent data draws (stability; default 5)")
    p.add_argument("--n", type=int, default=16, help="clean (and as many corrupt) prompts per resample")
    p.add_argument("--thresholds", help="ACDC thresholds, comma list (default: 10 spread over the metric's range)")
    p.add_argument("--ig-steps", type=int, default=5, help="EAP-IG interpolation steps (default 5)")
    p.add_argument("--out", help="results folder (default runs/circuits/NAME or RUN_DIR/circuits)")
    p.set_defaults(run=_circuits)

    p = sub.add_parser("report", help="one self-contained HTML page for a run (curves, accuracy, perplexity, decoded "
                       "variables, ablation, circuits), two runs side by side, or a compiled task")
    p.add_argument("run_dir", nargs="?", type=Path, help="a run folder")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), help="two runs side by side")
    p.add_argument("--compiled", choices=TASK_NAMES, help="a compiled task: program, structure, residual, tier-1 circuit")
    p.add_argument("--circuits", type=Path, help="--compiled: the folder of `workbench circuits --compiled TASK` "
                   "(default runs/circuits/TASK)")
    p.add_argument("--out", type=Path, help="HTML file (default RUN_DIR/report.html, report_A_vs_B.html or "
                   "report_TASK.html)")
    p.add_argument("--screenshot", type=Path, help="also render the page in headless Chromium and save it as this PNG")
    p.set_defaults(run=_report)

    p = sub.add_parser("zoo", help="the decompiler's data (seed 003): random RASP programs compiled, checked "
                       "faithful, written as Parquet shards (Ray)")
    zoo = p.add_subparsers(dest="zoo_action", required=True)
    g = zoo.add_parser("generate", help="generate (or resume) a zoo of N unique faithful programs")
    g.add_argument("--n", type=int, required=True, help="programs in the zoo (unique, faithful)")
    g.add_argument("--out", type=Path, required=True, help="zoo folder (shards/, index.parquet, summary.json)")
    g.add_argument("--address", help="Ray cluster address (default: start Ray locally)")
    g.add_argument("--workers", type=int, default=None,
                   help="local Ray workers (default: all CPUs); 0 runs in this process without Ray")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--shard-size", type=int, default=100, help="programs attempted per shard / Ray task")
    g.add_argument("--timeout", type=float, default=5.0, help="CPU seconds per program (compile + check), default 5")
    g.add_argument("--memory-mb", type=int, default=4096,
                   help="address space the compiling process may add, MiB (0: no cap)")
    g.add_argument("--n-inputs", type=int, default=16, help="random inputs of the faithfulness check")
    g.add_argument("--causal", action="store_true", help="compile causal and check against causal evaluation")
    g.add_argument("--max-weight-tokens", type=int, default=40, help="skip models with more weight tokens (0: none)")
    g.add_argument("--ops", type=int, default=15, help="raw operations drawn per program (thesis: 15)")
    g.add_argument("--min-length", type=int, default=7, help="lines kept after pruning, at least (thesis: 7)")
    g.add_argument("--vocab-min", type=int, default=1)
    g.add_argument("--vocab-max", type=int, default=10)
    g.add_argument("--numeric-share", type=float, default=0.5, help="share of programs with numeric tokens")
    g.add_argument("--max-seq-len", type=int, default=10)
    g.set_defaults(run=_zoo_generate)
    s = zoo.add_parser("show", help="counts, length/op histograms (plotly) and example programs of a zoo")
    s.add_argument("dir", type=Path, help="a zoo folder")
    s.add_argument("--figure", help="HTML file for the histograms (default DIR/zoo.html)")
    s.add_argument("--examples", type=int, default=3, help="example programs printed (default 3)")
    s.set_defaults(run=_zoo_show)

    p = sub.add_parser("decompile", help="the decompiler's meta-model (seed 003): train it on a zoo, score it, or "
                       "decompile one program (`workbench decompile RUN --program NAME`)")
    decompile = p.add_subparsers(dest="decompile_action", required=True)
    t = decompile.add_parser("train", help="train a meta-model on a zoo's train split (checkpoints, --resume)")
    t.add_argument("--zoo", type=Path, required=True, help="a zoo folder (`workbench zoo generate`)")
    t.add_argument("--out", type=Path, required=True, help="run folder (config, metrics.jsonl, checkpoints/)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate (warm-up, then cosine to 0)")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-steps", type=int, default=100)
    t.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: none)")
    t.add_argument("--noise", type=float, default=0.4, help="input noise, in standard deviations of each parameter "
                   "(thesis: 0.4)")
    t.add_argument("--layers", type=int, default=4, help="GPT-2 blocks (CPU default 4; thesis: GPT-2 Large, 36)")
    t.add_argument("--d-model", type=int, default=256)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--dropout", type=float, default=0.1, help="GPT-2's dropout")
    t.add_argument("--input-dropout", type=float, default=0.05, help="dropout on the weight tokens (thesis 5-30 %%)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-every", type=int, default=250, help="steps between validation checks (0: none)")
    t.add_argument("--eval-programs", type=int, default=256, help="validation programs per check")
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--train-programs", type=int, default=0,
                   help="train on the first N programs of the train split (a learning curve over zoo size; 0: all)")
    t.set_defaults(run=_decompile_train)
    e = decompile.add_parser("eval", help="score a run on a split: token accuracy (thesis), non-fixed accuracy, "
                             "baseline, functional accuracy")
    e.add_argument("run_dir", metavar="RUN", type=Path, help="a meta-model run folder")
    e.add_argument("--split", choices=["train", "validation", "test"], default="validation")
    e.add_argument("--n-inputs", type=int, default=16, help="random inputs of the functional check")
    e.add_argument("--limit", type=int, help="score only the split's first N programs")
    e.add_argument("--no-functional", action="store_true", help="skip the functional check (compiling)")
    e.set_defaults(run=_decompile_eval)
    w = decompile.add_parser("show", help="decompile one program: predicted next to true, token by token "
                             "(also `workbench decompile RUN --program NAME`)")
    w.add_argument("run_dir", metavar="RUN", type=Path, help="a meta-model run folder")
    w.add_argument("--program", required=True, help="make_length, make_hist, make_sort_unique, make_reverse, or "
                   "zoo:INDEX (a program of the run's zoo)")
    w.add_argument("--n-inputs", type=int, default=16, help="random inputs of the functional check")
    w.set_defaults(run=_decompile_show)

    p = sub.add_parser("demo", help="the main job: inject count into a tiny model on the CPU, measured")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--steps", type=int, help="override the preset's 3,000 steps")
    p.set_defaults(run=_demo)
    return parser


DECOMPILE_ACTIONS = ("train", "eval", "show")


def _with_decompile_show(argv: list[str]) -> list[str]:
    """``decompile RUN --program NAME`` is ``decompile show RUN --program NAME`` (the issue's spelling)."""
    if len(argv) > 1 and argv[0] == "decompile" and argv[1] not in DECOMPILE_ACTIONS and not argv[1].startswith("-"):
        return [argv[0], "show", *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_with_decompile_show(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("workbench").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    try:
        args.run(args)
    except WorkbenchError as error:
        print(f"error: {_one_line(str(error))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
