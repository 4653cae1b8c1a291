"""Tokenizer adaptation: digits and brackets one per token, ordinary English untouched."""

import pytest

from workbench.models import adapt_tokenizer, gpt2_tokenizer, smollm2_tokenizer

ENGLISH = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
    "want of a wife. However little known the feelings or views of such a man may be on his first entering a "
    "neighbourhood, this truth is so well fixed in the minds of the surrounding families, that he is "
    "considered the rightful property of some one or other of their daughters.\n\"My dear Mr. Bennet,\" said "
    "his lady to him one day, \"have you heard that Netherfield Park is let at last?\" Mr. Bennet replied that "
    "he had not. \u201cBut it is,\u201d returned she; \u201cfor Mrs. Long has just been here, and she told me all about it.\u201d"
)

TOKENIZERS = {"gpt2": gpt2_tokenizer, "smollm2": smollm2_tokenizer}


@pytest.fixture(scope="module", params=list(TOKENIZERS))
def pair(request):
    original = TOKENIZERS[request.param]()
    return original, adapt_tokenizer(original)


def test_gpt2_tokenizer_is_the_real_one():
    tokenizer = gpt2_tokenizer()
    assert len(tokenizer) == 50257
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]


def test_ordinary_english_is_tokenized_exactly_as_before(pair):
    original, adapted = pair
    assert adapted(ENGLISH)["input_ids"] == original(ENGLISH)["input_ids"]
    assert len(adapted) == len(original)


def test_numbers_and_brackets_become_single_characters(pair):
    original, adapted = pair
    text = "Are parentheses here correctly matched? []{()}.Answer: Yes 211 + 123 = 334 <<>>"
    before = original.convert_ids_to_tokens(original(text)["input_ids"])
    assert any(len(t.lstrip("Ġ")) > 1 and set(t) & set("[](){}0123456789<>") for t in before)  # merged before
    ids = adapted(text)["input_ids"]
    for token in adapted.convert_ids_to_tokens(ids):
        core = token.removeprefix("Ġ")
        if set(core) & set("[](){}0123456789<>"):
            assert len(core) == 1, token
    assert adapted.decode(ids) == text
