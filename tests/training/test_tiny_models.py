"""The locally built tiny models load back, generate and score without touching a hub."""

import pytest

pytest.importorskip("torch")

from training.runners.tiny_models import (  # noqa: E402
    build_tiny_causal_lm,
    build_tiny_reward_model,
    minilm_path,
    tokenizer_ensure_special_tokens,
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_tiny_causal_lm_round_trips_and_generates(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_causal_lm(tmp_path / "lm", seed=0)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2
    assert tok.pad_token_id is not None and tok.eos_token_id is not None and tok.bos_token_id is not None
    chat = tok.apply_chat_template([{"role": "user", "content": "Chest pain?"}], tokenize=False, add_generation_prompt=True)
    assert chat.endswith("<|assistant|>\n")
    ids = tok("What should I do about chest pain?", return_tensors="pt")
    # A clinical word list makes common words single tokens, not one per byte.
    assert ids.input_ids.shape[1] < 15
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.input_ids.shape[1]


def test_tiny_reward_model_is_deterministic(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    a = build_tiny_reward_model(tmp_path / "a", seed=3)
    b = build_tiny_reward_model(tmp_path / "b", seed=3)
    tok = AutoTokenizer.from_pretrained(a)
    ids = tok("Call emergency services now.", return_tensors="pt")
    ra = AutoModelForSequenceClassification.from_pretrained(a)(**ids).logits
    rb = AutoModelForSequenceClassification.from_pretrained(b)(**ids).logits
    assert ra.shape == (1, 1) and float(ra) == pytest.approx(float(rb))


def test_minilm_tokenizer_gets_an_eos():
    from transformers import AutoTokenizer

    tok = tokenizer_ensure_special_tokens(AutoTokenizer.from_pretrained(minilm_path()))
    assert tok.eos_token == tok.sep_token == "[SEP]"
