"""Compression (tracr §5): a width well below D keeps the outputs; decoding through Wᵀ recovers the variables."""

import random

import torch

from workbench.compiled import residual_hook_names
from workbench.compress import layer_cosines, output_accuracy, program_sampler, projected_run, train_compression
from workbench.decode import decode_variables, program_variables


def test_sort_unique_compressed_to_a_third_keeps_its_outputs():
    compiled, sample, batcher = program_sampler("sort_unique")
    width = 8
    assert width <= compiled.model.cfg.d_model // 3
    result = train_compression(compiled, sample, width, steps=600, batcher=batcher)
    assert result.losses[-1] < 0.5 * result.losses[0]
    rng = random.Random(123)
    inputs = [sample(rng) for _ in range(200)]
    assert output_accuracy(compiled, result.model, inputs) >= 0.99
    assert result.model.cfg.d_model == width
    # the folded width-d model is the projected model exactly
    ids = compiled.encode(inputs[0])
    scores, residuals = projected_run(compiled, ids, result.w)
    assert torch.allclose(result.model(ids), scores, atol=1e-4)
    _, cache = result.model.run_with_cache(ids)
    final = residual_hook_names(compiled.n_layers)[-1]
    assert torch.allclose(cache[final] @ result.w.T, residuals[-1], atol=1e-4)
    # decoding the compressed residual through Wᵀ recovers the program's variables
    agree = total = 0
    for tokens in inputs[:50]:
        ids = compiled.encode(tokens)
        _, compressed_cache = result.model.run_with_cache(ids)
        decoded = decode_variables(compiled, (compressed_cache[final][0] @ result.w.T)[1:], tokens)
        truth = decode_variables(compiled, compiled.residuals(tokens)[final][1:], tokens)
        for variable in program_variables(compiled):
            if not compiled.is_numerical(variable):
                agree += sum(a == b for a, b in zip(decoded.loc[variable], truth.loc[variable]))
                total += len(tokens)
    assert agree / total >= 0.95
    assert decoded.loc[compiled.output_variable].tolist() == truth.loc[compiled.output_variable].tolist()
    cosines = layer_cosines(compiled, result.w, inputs[:20])
    assert len(cosines) == 2 * compiled.n_layers + 1 and min(cosines) > 0.8
