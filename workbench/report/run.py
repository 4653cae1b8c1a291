"""The sections of a run's page, each drawn from the files the other commands leave in the run folder.

Only files are read (JSON, CSV, the checkpoint's safetensors header): no model is loaded and neither
torch nor tracr is imported, so a page builds in seconds even for a long run. A section whose file
is not there says which command writes it.

    config.json, metrics.jsonl, checkpoints/   workbench train
    eval/accuracy.csv, eval/summary.json       workbench eval RUN
    eval_original/summary.json                 workbench eval RUN --original
    decode/view.json, decode/agreement.csv     workbench decode RUN --prompt ...
    ablation/noise_ablation.csv                workbench ablate RUN
    circuits/summary.csv, circuits/roc.csv     workbench circuits --run RUN
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from safetensors import safe_open

from workbench.curves import downsample, training_seconds
from workbench.errors import WorkbenchError
from workbench.plots import ablation_figure, prompt_figures, roc_figure
from workbench.report.page import Page, Section, percent

PASS = 0.90  # DESIGN.md, "Runs that count": below this strict test accuracy a run does not compute its program
CURVE_POINTS = 400  # points per drawn curve: a 10,000-step run's curves stay a few hundred kB
LOSSES = ("loss", "ce", "alignment", "kl")  # metrics.jsonl columns drawn as loss curves, when present
STEP_FOLDER = re.compile(r"step_\d+")
FAITHFULNESS = ("faithfulness", "cpr", "cmd")  # circuits/summary.csv: the older single area, MIB's CPR and CMD


def run_page(run_dir: str | Path, prefix: str = "") -> Page:
    """The page of one run; ``prefix`` keeps figure ids unique when two runs share a page."""
    folder = Path(run_dir)
    if not (folder / "config.json").is_file():
        raise WorkbenchError(f"{folder} is not a run folder (no config.json); give a folder made by "
                             f"`workbench train --out {folder} ...`")
    config = json.loads((folder / "config.json").read_text())
    run = _Run(folder, config, prefix)
    sections = [run.configuration(), run.curves(), run.accuracy(), run.perplexity(), run.agreement(),
                run.prompt(), run.ablation(), run.circuits()]
    return Page(f"{folder.resolve().parent.name}/{folder.name}", f"{config['method'].upper()} run of the {config['task']} task on {config['model']}",
                sections)


class _Run:
    def __init__(self, folder: Path, config: dict, prefix: str):
        self.folder, self.config, self.prefix = folder, config, prefix
        self.is_ti = config["method"] == "ti"

    def _id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _read_json(self, relative: str) -> dict | None:
        path = self.folder / relative
        return json.loads(path.read_text()) if path.is_file() else None

    def _read_csv(self, relative: str, **options) -> pd.DataFrame | None:
        path = self.folder / relative
        return pd.read_csv(path, **options) if path.is_file() else None

    def _needs_ti(self, section: Section, what: str) -> bool:
        if not self.is_ti:
            section.text(f"An FT+KL run has no trained map into the program's basis, so it has no {what}; "
                         "that needs a TI run.")
        return self.is_ti

    # ---- sections ------------------------------------------------------------------------------------
    def configuration(self) -> Section:
        section = Section("config", "Configuration and model")
        accuracy = self._read_csv("eval/accuracy.csv")
        if accuracy is not None:
            strict = float(accuracy.iloc[0].model_accuracy)
            verdict = (f"Computes its program: {percent(strict)} strict test accuracy (at least {PASS:.0%})."
                       if strict >= PASS else
                       f"FAILED run: {percent(strict)} strict test accuracy (below {PASS:.0%}), so nothing "
                       "decoded from it is a result.")
            section.text(verdict, "verdict" if strict >= PASS else "verdict failed")
        else:
            section.lacks("test accuracy, so no verdict", f"workbench eval {self.folder}")
        checkpoint = self._latest_checkpoint()
        if checkpoint is None:
            section.lacks("checkpoint", f"workbench train --out {self.folder} --resume ...")
        else:
            section.table(pd.DataFrame(_model_rows(checkpoint), columns=["model", "value"]))
        metrics = self._metrics()
        if metrics is not None and "time" in metrics:
            section.text(f"{len(metrics):,} logged steps, last step {int(metrics.step.iloc[-1]):,}; training time "
                         f"{training_seconds(metrics).iloc[-1] / 60:.1f} min (pauses over a minute not counted).")
        section.table(pd.DataFrame([(k, json.dumps(v)) for k, v in self.config.items()],
                                   columns=["setting", "value"]))
        return section

    def curves(self) -> Section:
        section = Section("curves", "Training curves")
        metrics = self._metrics()
        if metrics is None:
            section.lacks("metrics.jsonl", f"workbench train --out {self.folder} ...")
            return section
        losses = [c for c in LOSSES if c in metrics]
        drawn = downsample(metrics[["step", *losses]], CURVE_POINTS)
        checks = [c for c in ("eval_accuracy", "eval_agreement") if c in metrics]
        held_out = (metrics[["step", *checks]].dropna(subset=["eval_accuracy"]) if checks
                    else pd.DataFrame(columns=["step", "eval_accuracy"]))
        held_out = downsample(held_out, CURVE_POINTS)
        figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                               subplot_titles=("losses (log scale)", "held-out checks in the loop (strict accuracy; "
                                                                     "TI: decoded agreement)"))
        for column in losses:
            figure.add_trace(go.Scatter(x=drawn.step, y=drawn[column], mode="lines", name=column), row=1, col=1)
        for column in checks or ["eval_accuracy"]:
            figure.add_trace(go.Scatter(x=held_out.step, y=held_out[column], mode="lines+markers", name=column),
                             row=2, col=1)
        figure.update_yaxes(type="log", row=1, col=1)
        figure.update_yaxes(range=[0, 1.02], tickformat=".0%", row=2, col=1)
        figure.update_xaxes(title_text="step", row=2, col=1)
        figure.update_layout(height=650, title="Loss and in-loop checks vs step")
        section.figure(self._id("curves-figure"), figure)
        thinned = f"drawn as {len(drawn):,} bucket means" if len(drawn) < len(metrics) else "every step drawn"
        section.text(f"{len(metrics):,} logged steps ({thinned}); {len(held_out):,} in-loop checks of "
                     f"{self.config.get('eval_prompts', '?')} test prompts each.")
        return section

    def accuracy(self) -> Section:
        section = Section("accuracy", "Task accuracy: test split and OOD suites")
        table = self._read_csv("eval/accuracy.csv")
        if table is None:
            section.lacks("evaluation", f"workbench eval {self.folder}")
            return section
        summary = self._read_json("eval/summary.json") or {}
        checkpoint = self._latest_checkpoint()
        latest = _step_of(checkpoint) if checkpoint else None
        if summary.get("step") is not None and latest is not None and summary["step"] != latest:
            section.text(f"Evaluated at step {summary['step']}, but the latest checkpoint is step {latest}: run "
                         f"<code>workbench eval {self.folder}</code> again.", "missing")
        section.text("Strict: greedy exact match (the answer, then a token that ends it); lenient: the answer "
                     "tokens only. The compiled program answers the same prompts.")
        section.table(pd.DataFrame({
            "set": table.set, "prompts": table.prompts,
            "model strict": table.model_accuracy.map(percent),
            "model lenient": table.model_accuracy_lenient.map(percent),
            "compiled program": table.compiled_accuracy.map(percent),
            "compiled supports it": table.compiled_supports.map({True: "yes", False: "no"}),
            "description": table.description}))
        return section

    def perplexity(self) -> Section:
        section = Section("perplexity", "Perplexity vs the original model")
        after, before = self._read_json("eval/summary.json"), self._read_json("eval_original/summary.json")
        if after is None:
            section.lacks("evaluation of the run", f"workbench eval {self.folder}")
        if before is None:
            section.lacks("evaluation of the original model", f"workbench eval {self.folder} --original")
        if after is None or before is None:
            return section
        rows = [(name, f"{before['perplexity'][key]:.2f}", f"{after['perplexity'][key]:.2f}",
                 f"{100 * (after['perplexity'][key] / before['perplexity'][key] - 1):+.1f} %")
                for name, key in (("per line (mean)", "per_line_ppl"), ("per token", "token_ppl"))]
        section.table(pd.DataFrame(rows, columns=["perplexity", "original", "after training", "change"]))
        corpus = after.get("perplexity_corpus", "")
        if corpus != before.get("perplexity_corpus", ""):
            section.text("The two evaluations used different text: rerun both with the same options.", "missing")
        section.text(f"Text: {corpus}.")
        return section

    def agreement(self) -> Section:
        section = Section("agreement", "Decoded-variable agreement with the compiled program")
        if not self._needs_ti(section, "decoded variables"):
            return section
        table = self._read_csv("decode/agreement.csv", index_col="variable")
        if table is None:
            section.lacks("agreement table", f'workbench decode {self.folder} --prompt "PROMPT OF THE TASK"')
            return section
        text = table.map(percent)
        figure = go.Figure(go.Heatmap(z=table.values, x=list(table.columns), y=list(table.index), zmin=0, zmax=1,
                                      colorscale="Viridis", text=text.values, texttemplate="%{text}",
                                      hovertemplate="%{y} at %{x}: %{text}<extra></extra>"))
        figure.update_layout(title="Share of (prompt, position) where the decoded value equals the compiled one",
                             height=max(350, 40 * len(table) + 150), yaxis=dict(autorange="reversed"))
        section.figure(self._id("agreement-figure"), figure)
        section.text(f"Mean over every variable at every aligned layer: {percent(table.stack().mean())}; "
                     "blank where the compiled program has not computed the variable yet.")
        return section

    def prompt(self) -> Section:
        section = Section("prompt", "One prompt, layer by layer (paper Figures 4–6)")
        if not self._needs_ti(section, "decoded view"):
            return section
        view = self._read_json("decode/view.json")
        if view is None:
            section.lacks("decoded prompt", f'workbench decode {self.folder} --prompt "PROMPT OF THE TASK"')
            return section
        tables = [pd.DataFrame(**table) for table in view["tables"]]
        figures = prompt_figures(view["tokens"], view["layers"], view["raw"], view["mapped"],
                                 view["compiled_labels"], tables)
        section.text(f"Prompt: <code>{' '.join(view['tokens'])}</code>. Move the slider to change the layer.")
        for name, figure in zip(("residual", "mapped", "decoded"), figures):
            section.figure(self._id(f"prompt-{name}"), figure)
        return section

    def ablation(self) -> Section:
        section = Section("ablation", "Noise in the answer subspace vs random subspaces (paper Figure 3)")
        if not self._needs_ti(section, "answer subspace to ablate"):
            return section
        table = self._read_csv("ablation/noise_ablation.csv")
        if table is None:
            section.lacks("noise ablation", f"workbench ablate {self.folder}")
            return section
        section.figure(self._id("ablation-figure"), ablation_figure(table))
        means = table.groupby(["norm", "subspace"])["accuracy"].mean().unstack("subspace")
        shown = means.map(percent).reset_index()
        shown["norm"] = means.index.map(lambda n: f"{n:g}")
        section.text(f"Accuracy (mean over {table.seed.nunique()} seeds, {int(table.prompts.iloc[0])} test prompts) "
                     f"with noise of each norm added at {table.layer.iloc[0]}, in a subspace of dimension "
                     f"{int(table.dimension.iloc[0])}.")
        section.table(shown)
        return section

    def circuits(self) -> Section:
        section = Section("circuits", "Circuit discovery against the injected circuit (tier 2)")
        if not self._needs_ti(section, "known circuit (tier 2 transports the program's through the layer map)"):
            return section
        summary = self._read_csv("circuits/summary.csv")
        if summary is None:
            section.lacks("circuit scores", f"workbench circuits --run {self.folder}")
            return section
        first = summary.iloc[0]
        section.text(f"{int(first.true_edges)} true edges of {int(first.scored_edges)} scored ({int(first.edges)} in "
                     f"the graph), {first.ablation} ablation; mean ± std over {int(first.resamples)} resamples.")
        shown = pd.DataFrame({
            "method": summary.method,
            "edge AUC": [f"{a:.3f} ± {s:.3f}" for a, s in zip(summary.edge_auc, summary.edge_auc_std)],
            "node AUC": [f"{a:.3f} ± {s:.3f}" for a, s in zip(summary.node_auc, summary.node_auc_std)]})
        for column in FAITHFULNESS:  # whichever areas of the faithfulness curve this version of the table has
            if column in summary:
                shown[column] = summary[column].map(lambda v: f"{v:.3f}")
        shown["seconds"] = summary.seconds.map(lambda v: f"{v:.1f}")
        section.table(shown)
        curves = self._read_csv("circuits/roc.csv")
        if curves is None:
            section.lacks("ROC curves", f"workbench circuits --run {self.folder}")
        else:
            section.figure(self._id("circuits-roc"), roc_figure(curves, "ROC against the known circuit"))
        return section

    # ---- files ---------------------------------------------------------------------------------------
    def _metrics(self) -> pd.DataFrame | None:
        path = self.folder / "metrics.jsonl"
        if not path.is_file() or path.stat().st_size == 0:
            return None
        return pd.read_json(path, lines=True, precise_float=True)

    def _latest_checkpoint(self) -> Path | None:
        """The step folder ``checkpoints/latest`` names, else the newest step folder (as training resumes)."""
        root = self.folder / "checkpoints"
        pointer = root / "latest"
        if pointer.is_file() and STEP_FOLDER.fullmatch(name := pointer.read_text().strip()) and (root / name).is_dir():
            return root / name
        folders = sorted(p for p in root.glob("step_*") if STEP_FOLDER.fullmatch(p.name)) if root.is_dir() else []
        return folders[-1] if folders else None


def _step_of(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("step_"))


def _model_rows(checkpoint: Path) -> list[tuple[str, str]]:
    """The model's shape, read from the checkpoint's tensor names and shapes (the safetensors header only)."""
    with safe_open(checkpoint / "model.safetensors", "numpy") as weights:
        shapes = {name: weights.get_slice(name).get_shape() for name in weights.keys()}
    blocks = {int(name.split(".")[1]) for name in shapes if name.startswith("blocks.")}
    vocab, d_model = shapes["embed.W_E"]
    return [("checkpoint", f"{checkpoint.name} (step {_step_of(checkpoint):,})"), ("blocks", str(len(blocks))),
            ("d_model", str(d_model)), ("vocabulary", f"{vocab:,}")]
