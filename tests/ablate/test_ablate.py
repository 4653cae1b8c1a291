"""On a tiny injected model: noise in the answer subspace hurts at least as much as random noise,
and decoded agreement is reported per variable and layer."""

import numpy as np
import pytest

from workbench.ablate import noise_ablation, orthonormal_basis
from workbench.decode import agreement, program_variables
from workbench.inject.config import InjectionConfig
from workbench.inject.trainer import train


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    config = InjectionConfig(task="count", model="tiny-gpt2", tiny_layers=4, task_batch=6, text_batch=2,
                             text_tokens=16, lr_model=3e-3, lr_map=3e-2, train_pool=1200, steps=200,
                             checkpoint_every=200)
    return train(config, tmp_path_factory.mktemp("run") / "tiny", progress=False)


def test_answer_subspace_noise_hurts_at_least_as_much_as_random(injected):
    compiled, task, injector = injected["compiled"], injected["task"], injected["injector"]
    table = noise_ablation(injector.model, injector.map, compiled.dims_of(compiled.output_variable), task,
                           injected["tokenizer"], compiled, task.split("test", 40), injected["mapping"],
                           norms=(0, 100, 300), seeds=2)
    means = table.groupby(["subspace", "norm"])[["accuracy", "answer_loss"]].mean()
    print(means)
    clean = means.loc[("answer subspace", 0)]
    assert clean.equals(means.loc[("random subspace", 0)])  # norm 0 adds nothing
    # The 200-step fixture scores ~10 % clean: at norm 30 both subspaces leave it at chance (measured
    # 1.92 vs 1.93 answer loss, either order), so the comparison is made where the noise decides.
    for norm in (100, 300):
        answer, random = means.loc[("answer subspace", norm)], means.loc[("random subspace", norm)]
        assert answer.accuracy <= random.accuracy
        assert answer.answer_loss >= random.answer_loss
    assert means.loc[("answer subspace", 100)].answer_loss > clean.answer_loss + 1.0
    assert set(table.dimension) == {len(compiled.dims_of(compiled.output_variable))}


def test_orthonormal_basis_spans_the_rows():
    import torch

    vectors = torch.randn(16, 3)
    basis = orthonormal_basis(vectors)
    assert torch.allclose(basis.T @ basis, torch.eye(3), atol=1e-5)
    assert torch.allclose(basis @ basis.T @ vectors, vectors, atol=1e-4)


def test_decoded_agreement_is_reported_per_variable_and_layer(injected):
    compiled, task, injector = injected["compiled"], injected["task"], injected["injector"]
    table = agreement(injector.model, injector.map, injected["tokenizer"], task, compiled, task.split("test", 20),
                      injected["mapping"])
    print(table)
    assert list(table.index) == program_variables(compiled)
    assert table.shape[1] == len(injected["mapping"])
    values = table.to_numpy(dtype=float).ravel()
    values = values[~np.isnan(values)]
    assert len(values) and ((values >= 0) & (values <= 1)).all()
    # tokens and indices are computed from the start: reported at layer 0; the answer only at the last layer
    assert table.iloc[:, 0][["tokens", "indices"]].notna().all()
    assert table.loc[compiled.output_variable].iloc[:-1].isna().all()
    assert table.loc["tokens"].iloc[-1] > 0.9  # the map recovers the compiled tokens after training


def test_agreement_does_not_depend_on_the_scale_the_cosine_loss_leaves_free(injected):
    import copy

    import torch

    compiled, task, injector = injected["compiled"], injected["task"], injected["injector"]
    examples = task.split("test", 10)
    scaled = copy.deepcopy(injector.map)
    with torch.no_grad():
        scaled.weight *= 7.0
        scaled.bias *= 7.0
    tables = [agreement(injector.model, linear_map, injected["tokenizer"], task, compiled, examples,
                        injected["mapping"]) for linear_map in (injector.map, scaled)]
    assert tables[0].equals(tables[1])
    assert tables[0].loc["one"].min() > 0.9  # the constant direction, read at the compiled scale
