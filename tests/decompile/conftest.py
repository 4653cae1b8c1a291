"""A small zoo shared by the meta-model tests (small programs keep its generation to seconds)."""

import pytest

from workbench.decompile.generator import GeneratorConfig
from workbench.decompile.zoo import ZooConfig, generate_zoo

SMALL_ZOO = ZooConfig(generator=GeneratorConfig(n_ops=8, min_length=3, vocab_max=5, max_seq_len=6), seed=5,
                      shard_size=8, n_inputs=8, timeout_s=60, split=(0.7, 0.15))


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp("metamodel") / "zoo"
    generate_zoo(16, out, SMALL_ZOO, workers=0, progress=False)
    return out
