"""One leaderboard of the circuit-discovery methods: methods × targets, tier 1 and tier 2.

    python analyses/leaderboard.py [--run runs/presets/tiny/count_ti --run ...] [--resamples 5] [--large-resamples 3]
        [--stored]

Runs both tiers through ``analyses/circuits.py`` (tier 1: the 3 task programs and the 15 tracr
library programs; tier 2: the given TI runs, each published only at ≥ 90 % task accuracy), so
results/circuits_tier{1,2}.{csv,md} and results/circuits_leaderboard.{csv,md} are written from the
same rows (kept per target in results/circuits_rows/: a killed run resumes). The figure
results/circuits_leaderboard.html (edge AUC per method and target; CPU seconds, log axis) is not
committed: this command regenerates it. ``--stored`` lays out only the targets already computed
(the others are listed in the notes), without computing anything.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from circuits import METHODS, ROWS, TIER1, tier_table, write_tier
from plotly.subplots import make_subplots
from tables import RESULTS

from workbench.plots import write_figure

# the leaderboard's columns, taken as they are from the tier tables' rows
BOARD = ["tier", "target", "level", "truth_ablation", "scored_edges", "true_edges", "method", "resamples",
         "edge_auc", "edge_auc_std", "node_auc", "node_auc_writing", "cpr", "cpr_std", "cmd", "cmd_std",
         "score_rank_stability", "seconds", "cpu_seconds", "task_accuracy"]
# one line per column, the leaderboard's notes and the README's
MEANINGS = {
    "edge AUC": "ROC AUC of the method's edge scores against the true edges, over the scored edges (0.5 = chance, "
                "1 = every true edge ranked above every other)",
    "node AUC": "the same for components (a component scores its best edge); `node_auc_writing` only over "
                "components that write something (empty on compiled programs: all of them are true)",
    "CPR": "MIB's circuit performance ratio: area under the faithfulness f = (L_empty - L_circuit) / (L_empty - "
           "L_full) of the method's top x of the scored edges, x = 0, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100 %, "
           "trapezoids over x (higher is better; where the true circuit is a large share of the graph, as on the small "
           "compiled programs, even the true edges ranked first recover little before x reaches that share)",
    "CMD": "MIB's circuit-model difference: area under |1 - f| over the same sizes (lower is better)",
    "std": "spread (standard deviation) of a metric over the data resamples (`resamples` of them)",
    "rank stability": "mean Spearman correlation of the edge scores between every pair of resamples",
    "seconds": "per method and resample: wall clock (`seconds`) and process CPU time (`cpu_seconds`) on a shared "
               "2-core CPU; the wall clock includes the other jobs' load",
}


def leaderboard(tier1: pd.DataFrame | None, tier2: pd.DataFrame | None) -> pd.DataFrame:
    """The tier tables' rows, one per (target, method), with the leaderboard's columns (``BOARD``)."""
    parts = [table.assign(tier=tier) for tier, table in ((1, tier1), (2, tier2)) if table is not None]
    return pd.concat(parts, ignore_index=True).reindex(columns=BOARD)


def method_summary(board: pd.DataFrame) -> pd.DataFrame:
    """Per tier and method: the mean of edge AUC, CPR and CMD over the targets, the median CPU seconds per
    resample, and on how many targets; best mean edge AUC first within a tier."""
    grouped = board.groupby(["tier", "method"])
    summary = pd.DataFrame({"targets": grouped.target.nunique(), "mean edge AUC": grouped.edge_auc.mean(),
                            "mean CPR": grouped.cpr.mean(), "mean CMD": grouped.cmd.mean(),
                            "median CPU s": grouped.cpu_seconds.median()}).reset_index()
    return summary.sort_values(["tier", "mean edge AUC"], ascending=[True, False]).round(3)


def figure(board: pd.DataFrame) -> go.Figure:
    """Edge AUC (± std over resamples) per method and target, and CPU seconds per resample on a log axis."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("edge AUC (± std over resamples; 0.5 = chance)",
                                        "CPU seconds per resample (log)"))
    colours = dict(zip(board.method.unique(), px.colors.qualitative.Plotly))
    for method, part in board.groupby("method", sort=False):
        where = [part.tier.map(lambda t: f"tier {t}"), part.target]  # targets grouped by tier on the axis
        style = dict(mode="markers", name=method, legendgroup=method, marker=dict(color=colours[method], size=8))
        fig.add_trace(go.Scatter(x=where, y=part.edge_auc, error_y=dict(array=part.edge_auc_std), **style),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=where, y=part.cpu_seconds, showlegend=False, **style), row=2, col=1)
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=1)
    fig.update_yaxes(title_text="edge AUC", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title_text="CPU s", type="log", row=2, col=1)
    fig.update_layout(title="Circuit discovery leaderboard: methods × targets", height=850,
                      width=max(1000, 45 * board.target.nunique()))
    return fig


def write_leaderboard(board: pd.DataFrame, notes: list[str], out: Path = RESULTS) -> list[Path]:
    """results/circuits_leaderboard.csv, .md (per-method summary, then every row) and .html (:func:`figure`)."""
    out.mkdir(parents=True, exist_ok=True)
    board.to_csv(out / "circuits_leaderboard.csv", index=False)
    text = ("# Circuit discovery leaderboard\n\n## Per method (mean over targets)\n\n"
            + method_summary(board).to_markdown(index=False) + "\n\n## Every target\n\n"
            + board.to_markdown(index=False) + "\n\n"
            + "\n".join(f"- **{name}**: {meaning}" for name, meaning in MEANINGS.items()) + "\n"
            + "".join(f"- {note}\n" for note in notes))
    (out / "circuits_leaderboard.md").write_text(text)
    return [out / "circuits_leaderboard.csv", out / "circuits_leaderboard.md",
            *write_figure(figure(board), out / "circuits_leaderboard")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", default=[], help="tier 2: a TI run folder (repeatable)")
    parser.add_argument("--programs", default=",".join(TIER1), help="tier 1: tasks and tracr lib programs")
    parser.add_argument("--resamples", type=int, default=5)
    parser.add_argument("--large-resamples", type=int, default=3, help="resamples on graphs of more than 1000 edges")
    parser.add_argument("--n", type=int, default=8, help="clean (and corrupt) prompts per resample")
    parser.add_argument("--stored", action="store_true",
                        help="only the targets whose rows are stored; the others are listed as not computed yet")
    args = parser.parse_args()
    settings = dict(methods=METHODS, resamples=args.resamples, n=args.n, large_resamples=args.large_resamples,
                    rows=ROWS, compute=not args.stored)
    tier1, notes1 = tier_table(1, args.programs.split(","), "zero", **settings)
    runs = [str(Path(run)) for run in args.run]  # runs/x/ and runs/x are one run
    tier2, notes2 = tier_table(2, runs, "resample", **settings) if runs else (None, [])
    if tier1 is None and tier2 is None:
        raise SystemExit("no target computed yet: nothing to lay out (" + "; ".join(notes1 + notes2) + ")")
    for tier, table, notes, ablation in ((1, tier1, notes1, "zero"), (2, tier2, notes2, "resample")):
        if table is not None:
            write_tier(tier, table, notes, ablation, args.n)
    notes = [f"tier 1: compiled programs, head level, zero ablation; tier 2: injected TI runs, layer level, resample "
             f"ablation; methods {METHODS}; {args.n} clean + {args.n} corrupt inputs per resample"] + notes1 + notes2
    for path in write_leaderboard(leaderboard(tier1, tier2), notes):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
