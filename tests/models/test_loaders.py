
import pytest
import torch

from workbench import WorkbenchError
from workbench.models import load_model


@pytest.mark.parametrize("kind,norm", [("tiny-gpt2", "LN"), ("tiny-llama", "RMS")])
def test_tiny_models_run_with_their_real_tokenizer(kind, norm):
    loaded = load_model(kind, n_layers=3, device="cpu")
    assert loaded.model.cfg.n_layers == 3 and loaded.model.cfg.normalization_type == norm
    assert loaded.model.cfg.d_vocab == len(loaded.tokenizer)
    ids = loaded.tokenizer("211 + 123 = 334", return_tensors="pt")["input_ids"]
    logits = loaded.model(ids)
    assert logits.shape == (1, ids.shape[1], len(loaded.tokenizer)) and torch.isfinite(logits).all()
    again = load_model(kind, n_layers=3, device="cpu").model
    assert torch.equal(again.W_E, loaded.model.W_E)  # seeded


def test_gpt2_offline_names_the_local_folder_option(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WorkbenchError, match="--model <local folder>"):
        load_model("gpt2-large")


def test_unknown_model_and_bad_folder(tmp_path):
    with pytest.raises(WorkbenchError, match="unknown model 'gpt5'"):
        load_model("gpt5")
    with pytest.raises(WorkbenchError, match="has no config.json"):
        load_model(str(tmp_path))


@pytest.mark.slow
def test_smollm2_matches_hf_and_completes_a_fact():
    from transformers import AutoModelForCausalLM

    from workbench.models import smollm2_folder

    loaded = load_model("smollm2-135m", device="cpu")
    ids = loaded.tokenizer("The capital of France is", return_tensors="pt")["input_ids"]
    hf = AutoModelForCausalLM.from_pretrained(smollm2_folder(), dtype=torch.float32)
    with torch.no_grad():
        assert (loaded.model(ids) - hf(ids).logits).abs().max() <= 1e-3
    out = loaded.model.generate(ids, max_new_tokens=2, do_sample=False, verbose=False)
    assert loaded.tokenizer.decode(out[0, ids.shape[1]:]).startswith(" Paris")
