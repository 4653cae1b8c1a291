"""Tables, files and the CLI, on a compiled program (tier 1) and a tiny injected run (tier 2)."""

import json

import pandas as pd
import pytest

from workbench.circuits.benchmark import benchmark, run_target
from workbench.cli import main
from workbench.inject.config import InjectionConfig
from workbench.inject.trainer import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    config = InjectionConfig(task="count", model="tiny-gpt2", tiny_layers=4, task_batch=4, text_batch=2,
                             text_tokens=16, lr_model=3e-3, lr_map=3e-2, train_pool=200, steps=20,
                             checkpoint_every=20)
    run_dir = tmp_path_factory.mktemp("run") / "tiny"
    train(config, run_dir, progress=False)
    return run_dir


def test_cli_compiled_writes_tables_and_roc(tmp_path, capsys):
    out = tmp_path / "reverse"
    assert main(["circuits", "--compiled", "make_reverse", "--methods", "eap,random", "--resamples", "2",
                 "--n", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "reverse (tier 1): head-level graph: 10 nodes (4 heads, 4 MLPs), 77 edges" in printed
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.method) == ["eap", "random"]
    assert summary.loc[0, "edge_auc"] > 0.9 and summary.loc[0, "true_edges"] == 13
    assert (summary.truth_ablation == "zero").all() and (summary.writing_components == 5).all()
    assert summary.node_auc_writing.isna().all()  # every component that writes something is in the circuit
    assert (summary.resamples == 2).all() and summary.seconds.notna().all()
    resamples = pd.read_csv(out / "resamples.csv")
    assert len(resamples) == 4 and set(resamples["resample"]) == {0, 1}
    assert (out / "roc.html").exists() and {"edges", "nodes"} == set(pd.read_csv(out / "roc.csv").kind)


def test_tier2_on_an_injected_run(tiny_run, capsys):
    target = run_target(tiny_run)
    assert target.graph.level == "layer" and target.ablation == "resample"
    # count compiles to 3 blocks: with the paper map, model blocks 0-2 are scored, block 3 is not
    assert [c for c, d in zip(target.graph.components, target.truth.node_domain) if not d] == ["a3", "m3"]
    # (activation patching is checked at tier 1, tests/circuits/test_methods.py)
    summary, per_resample, _ = benchmark(target, "acdc,eap,eap-ig,random", resamples=2, n=6,
                                         options={"acdc": {"thresholds": [1e-3, 1e-1]}})
    assert len(per_resample) == 8 and target.truth.ablation == "resample"
    assert summary.edge_auc.between(0, 1).all() and summary.node_auc.between(0, 1).all()
    assert summary.loc["eap-ig", "ig_steps"] == 5
    assert main(["circuits", "--run", str(tiny_run), "--methods", "eap,random", "--resamples", "2",
                 "--n", "6"]) == 0
    assert "(tier 2): layer-level graph" in capsys.readouterr().out
    assert (tiny_run / "circuits" / "summary.csv").exists()


def test_cli_refuses_bad_requests(tiny_run, tmp_path, capsys):
    assert main(["circuits", "--methods", "eap"]) == 2
    assert "exactly one of --compiled" in capsys.readouterr().err
    assert main(["circuits", "--compiled", "reverse", "--run", str(tiny_run)]) == 2
    assert main(["circuits", "--compiled", "reverse", "--methods", "eap,magic"]) == 2
    assert "unknown method 'magic'" in capsys.readouterr().err
    ft = tmp_path / "ft"
    ft.mkdir()
    config = json.loads((tiny_run / "config.json").read_text())
    (ft / "config.json").write_text(json.dumps({**config, "method": "ft"}))
    assert main(["circuits", "--run", str(ft)]) == 2
    assert "FT+KL run" in capsys.readouterr().err
    assert main(["circuits", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
