"""The report shows the numbers the commands wrote: every figure and table is checked against the files of a
fake run written with known values (fake_run.py), recomputed here independently of the report's code."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import COMPILED_SECTIONS, REAL_RUN, ROOT, SECTIONS, read_page, section_table
from fake_run import METHODS, PPL_AFTER, PPL_ORIGINAL, SUITES, metrics_rows, write_fake_run

from workbench.cli import main
from workbench.curves import downsample
from workbench.report import compare_report, run_report
from workbench.report import run as run_module


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _ys(figure, name):
    return next(np.asarray(t.y) for t in figure.data if t.name == name)


def test_every_section_in_order_and_nothing_missing(fake_ti):
    page = run_report(fake_ti)
    assert [s.id for s in page.sections] == SECTIONS
    assert page.missing == []
    assert [s for s in read_page(page.html()).tables] == SECTIONS


def test_the_accuracy_table_is_the_evaluation(fake_ti):
    shown = section_table(run_report(fake_ti).html(), "accuracy")
    assert shown["set"].tolist() == [name for name, *_ in SUITES]
    assert shown["model strict"].tolist() == [_pct(strict) for _, _, strict, _, _ in SUITES]
    assert shown["model lenient"].tolist() == [_pct(lenient) for _, _, _, lenient, _ in SUITES]
    assert shown["compiled program"].tolist() == [_pct(compiled) for *_, compiled in SUITES]
    assert shown["compiled supports it"].tolist() == ["yes" if s else "no" for _, s, *_ in SUITES]


def test_the_verdict_follows_the_strict_test_accuracy(fake_ti, tmp_path):
    assert "Computes its program: 97.0 % strict test accuracy" in read_page(run_report(fake_ti).html()).text["config"]
    failed = write_fake_run(tmp_path / "failed")
    table = pd.read_csv(failed / "eval/accuracy.csv")
    table.loc[0, "model_accuracy"] = 0.89
    table.to_csv(failed / "eval/accuracy.csv", index=False)
    assert "FAILED run: 89.0 % strict test accuracy" in read_page(run_report(failed).html()).text["config"]


def test_perplexity_change_against_the_original(fake_ti):
    shown = section_table(run_report(fake_ti).html(), "perplexity").set_index("perplexity")
    for row, key in (("per line (mean)", "per_line_ppl"), ("per token", "token_ppl")):
        before, after = PPL_ORIGINAL[key], PPL_AFTER[key]
        assert shown.loc[row].tolist() == [f"{before:.2f}", f"{after:.2f}", f"{100 * (after / before - 1):+.1f} %"]
    assert shown.loc["per line (mean)", "change"] == "-5.0 %" and shown.loc["per token", "change"] == "+2.0 %"


def test_the_model_table_reads_the_checkpoint(fake_ti):
    shown = section_table(run_report(fake_ti).html(), "config", 0).set_index("model")["value"]
    assert shown.to_dict() == {"checkpoint": "step_0000300 (step 300)", "blocks": "3", "d_model": "16",
                               "vocabulary": "50"}


def test_long_curves_are_bucket_means_ending_at_the_last_step(tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "CURVE_POINTS", 100)
    run = write_fake_run(tmp_path / "long", steps=2000, eval_every=10)
    figure = run_report(run).figures["curves-figure"]
    raw = pd.DataFrame(metrics_rows(2000, 10))
    # 2,000 steps in 100 buckets of 20: each point the mean of its 20 steps, placed at the bucket's last step.
    assert np.allclose(_ys(figure, "loss"), raw.loss.to_numpy().reshape(100, 20).mean(axis=1))
    assert next(t for t in figure.data if t.name == "loss").x.tolist() == list(range(20, 2001, 20))
    checks = raw.eval_accuracy.dropna().to_numpy()  # 200 checks -> 100 means of 2
    assert np.allclose(_ys(figure, "eval_accuracy"), checks.reshape(100, 2).mean(axis=1))
    assert len(_ys(figure, "ce")) == 100 and _ys(figure, "ce")[-1] == pytest.approx(raw.ce.tail(20).mean())


def test_short_curves_are_drawn_step_by_step(fake_ti):
    figure = run_report(fake_ti).figures["curves-figure"]
    raw = pd.DataFrame(metrics_rows(300, 100))
    assert np.allclose(_ys(figure, "loss"), raw.loss) and np.allclose(_ys(figure, "alignment"), raw.alignment)
    assert _ys(figure, "eval_accuracy").tolist() == raw.eval_accuracy.dropna().tolist()


def test_downsample_keeps_short_curves_and_caps_long_ones():
    curve = pd.DataFrame({"step": range(1, 11), "loss": np.arange(10.0)})
    assert downsample(curve, 10).equals(curve)
    thinned = downsample(curve, 4)  # buckets of 3, 2, 3, 2 rows (row * 4 // 10)
    assert thinned.step.tolist() == [3, 5, 8, 10] and thinned.loss.tolist() == [1.0, 3.5, 6.0, 8.5]


def test_agreement_heatmap_is_the_decode_table(fake_ti):
    page = run_report(fake_ti)
    heatmap = page.figures["agreement-figure"].data[0]
    table = pd.read_csv(fake_ti / "decode/agreement.csv", index_col="variable")
    assert list(heatmap.y) == list(table.index) and list(heatmap.x) == list(table.columns)
    assert np.allclose(np.asarray(heatmap.z, dtype=float), table.to_numpy(), equal_nan=True)
    mean = np.nanmean(table.to_numpy())  # 9 defined cells
    assert f"every aligned layer: {_pct(mean)}" in read_page(page.html()).text["agreement"]


def test_prompt_figures_are_the_decoded_view_with_a_layer_slider(fake_ti):
    view = json.loads((fake_ti / "decode/view.json").read_text())
    figures = run_report(fake_ti).figures
    mapped, decoded = figures["prompt-mapped"], figures["prompt-decoded"]
    assert len(mapped.layout.sliders[0].steps) == len(view["layers"]) == len(mapped.data)
    assert [np.asarray(t.z).tolist() for t in mapped.data] == view["mapped"]
    assert list(mapped.data[0].x) == view["compiled_labels"]
    assert [np.asarray(t.z).tolist() for t in figures["prompt-residual"].data] == view["raw"]
    table = view["tables"][-1]
    assert list(decoded.data[-1].header.values) == ["variable", *table["columns"]]
    assert list(decoded.data[-1].cells.values[0]) == table["index"]


def test_ablation_curves_and_table_are_means_over_seeds(fake_ti):
    page = run_report(fake_ti)
    raw = pd.read_csv(fake_ti / "ablation/noise_ablation.csv")
    figure = page.figures["ablation-figure"]
    for trace in figure.data:
        rows = raw[raw.subspace == trace.name]
        expected = [rows[rows.norm == n].accuracy.sum() / 3 for n in (0, 10, 30)]
        assert np.allclose(trace.y, expected), trace.name
    shown = section_table(page.html(), "ablation").set_index("norm")
    assert shown.loc["30", "answer subspace"] == _pct(0.97 - 0.30 - 0.01)  # seeds 0, 1, 2 subtract 0.01 on average
    assert shown.loc["30", "random subspace"] == _pct(0.96)


def test_circuit_scores_and_roc(fake_ti):
    page = run_report(fake_ti)
    shown = section_table(page.html(), "circuits")
    assert shown["method"].tolist() == [m for m, *_ in METHODS]
    assert shown["edge AUC"].tolist() == [f"{e:.3f} ± {s:.3f}" for _, e, s, _, _ in METHODS]
    assert shown["node AUC"].tolist() == [f"{n:.3f} ± {s:.3f}" for *_, n, s in METHODS]
    assert shown["faithfulness"].tolist() == ["0.500"] * len(METHODS) and "cpr" not in shown
    roc = page.figures["circuits-roc"]
    assert {t.name for t in roc.data if t.showlegend is not False} == {m for m, *_ in METHODS}
    assert "5 true edges of 21 scored" in read_page(page.html()).text["circuits"]


def test_missing_inputs_name_the_command_that_writes_them(tmp_path):
    run = tmp_path / "bare"
    write_fake_run(run)
    for folder in ("eval", "eval_original", "decode", "ablation", "circuits"):
        for file in (run / folder).iterdir():
            file.unlink()
    page = run_report(run)
    assert [s.id for s in page.sections] == SECTIONS
    assert page.missing == [f"workbench eval {run}", f"workbench eval {run} --original",
                            f'workbench decode {run} --prompt "PROMPT OF THE TASK"', f"workbench ablate {run}",
                            f"workbench circuits --run {run}"]
    assert page.html().count('class="missing"') == 8  # verdict, accuracy, perplexity x2, agreement, prompt, ...


def test_an_ft_run_has_no_decoded_sections(fake_ft):
    page = run_report(fake_ft)
    assert page.missing == [] and set(page.figures) == {"curves-figure"}
    text = read_page(page.html()).text
    for section in ("agreement", "prompt", "ablation", "circuits"):
        assert "needs a TI run" in text[section]


def test_compare_puts_the_runs_side_by_side(fake_ti, fake_ft):
    page = compare_report(fake_ti, fake_ft)
    html = page.html()
    assert [s.id for s in page.sections] == SECTIONS and html.count("<section ") == len(SECTIONS)
    assert html.count('<div class="column">') == 2 * len(SECTIONS)
    assert set(page.figures) == {f"a-{f}" for f in run_report(fake_ti).figures} | {"b-curves-figure"}
    shown = read_page(html).tables["accuracy"]
    assert len(shown) == 2 and shown[0] == shown[1]  # both fake runs were evaluated alike


def test_the_cli_writes_one_self_contained_file(fake_ti, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", str(fake_ti), "--out", str(out)]) == 0
    html = out.read_text()
    assert html.count("* plotly.js v") == 1  # the library once, for every figure
    assert "<script src=" not in html and 'src="http' not in html  # nothing to fetch from a network
    assert f"report    {out}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["report"], "one of RUN_DIR, --compare RUN_A RUN_B or --compiled TASK"),
    (["report", "RUN", "--compiled", "count"], "one of RUN_DIR"),
    (["report", "/nonexistent/run"], "not a run folder (no config.json)"),
    (["report", "--compare", "/nonexistent/a", "/nonexistent/b"], "not a run folder"),
    (["report", "RUN", "--out", "page.pdf"], "give an .html file"),
    (["report", "RUN", "--screenshot", "page.jpg"], "give a .png file"),
    (["report", "RUN", "--circuits", "x"], "--circuits is the tier-1 results folder of --compiled TASK"),
])
def test_bad_input_is_one_line_and_exit_2(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_the_compiled_page_shows_the_program_and_its_known_circuit(compiled_count_page):
    from workbench.tasks import get_task

    compiled = get_task("count").compile()
    page = compiled_count_page
    assert [s.id for s in page.sections] == COMPILED_SECTIONS
    html = page.html()
    program = section_table(html, "program")
    assert program.expression.iloc[-1] == compiled.output_variable
    # Every value the program computes is named as in the compiled residual (and the structure table below).
    assert set(program.expression[program.encoding != "selector"]) <= set(compiled.variables)
    structure = section_table(html, "structure")
    assert structure.component.tolist() == [c.name for c in compiled.components]
    # The count program's zero-ablation truth has 14 edges (every tier-1 table since the truth was written);
    # not read from results/, whose tier-1 table may be a partly computed leaderboard.
    assert len(section_table(html, "circuits")) == 14
    residual = page.figures["residual-figure"]
    assert list(residual.data[0].x) == compiled.residual_labels
    assert len(page.missing) == 1 and page.missing[0].startswith("workbench circuits --compiled count --out ")


def test_decode_writes_the_view_the_report_draws(tmp_path):
    """The contract between `workbench decode` (writer) and the report (reader), on a real compiled view."""
    from workbench.decode.views import save_view, view_compiled
    from workbench.tasks import get_task

    task = get_task("count")
    compiled = task.compile()
    view = view_compiled(task, compiled, task.prompt_example)
    run = write_fake_run(tmp_path / "run")
    save_view(view, compiled, run / "decode/view.json")
    figures = run_report(run).figures
    assert np.allclose(np.asarray(figures["prompt-mapped"].data[-1].z, dtype=float), view.mapped[-1].numpy(),
                       atol=1e-4)
    decoded = figures["prompt-decoded"].data[-1]
    table = view.tables[-1]
    assert list(decoded.cells.values[1]) == ["" if v is None else str(v) for v in table[table.columns[0]]]


@pytest.mark.skipif(not (REAL_RUN / "eval_original" / "summary.json").exists(),
                    reason=f"no evaluated real run at {REAL_RUN} (runs/ is not in git; see the README's Report section)")
def test_the_real_count_run_shows_the_published_numbers():
    """results/injection.csv was computed by analyses/injection.py on the same run (200 prompts, 100 text lines)."""
    published = pd.read_csv(ROOT / "results/injection.csv").query("task == 'count' and method == 'ti'").iloc[0]
    html = run_report(REAL_RUN).html()
    accuracy = section_table(html, "accuracy").set_index("set")
    assert accuracy.loc["test", "model strict"] == _pct(published.test_strict) == "97.0 %"
    for suite in ("x_only", "triple_length", "y_to_z"):
        assert accuracy.loc[suite, "model strict"] == _pct(published[f"ood_{suite}"])
    change = section_table(html, "perplexity").set_index("perplexity").loc["per line (mean)", "change"]
    assert change == f"{published.ppl_change_pct:+.1f} %"
    agreement = pd.read_csv(REAL_RUN / "decode/agreement.csv", index_col="variable")
    for layer in range(4):
        assert math.isclose(agreement.iloc[:, layer].mean(), published[f"agreement_layer{layer}"], abs_tol=1e-4)
