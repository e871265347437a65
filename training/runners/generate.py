"""Sampling responses for a round, and scoring them with a reward model.

vLLM is used when it is importable and a GPU is visible (it is optional and not in
requirements.txt); otherwise `transformers` generate, which is what the CPU demo and the tests use.
Each response is sampled on its own with its own seed, so any one of them can be reproduced from
what the round records, and a resumed round produces the same text for the ones still missing.
Nothing here imports Django: the caller passes a callback that stores each response as it comes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from training.runners.common import is_conversational, load_policy, load_tokenizer, prompt_text, quiet_libraries, reward_input_ids
from training.runners.reward import load_reward_model, score_sequences


@dataclass(frozen=True)
class GenerationJob:
    key: object  # the caller's identity for this response
    prompt: str
    seed: int


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    max_prompt_tokens: int = 512
    chat: bool = False  # render the prompt with the tokenizer's chat template (conversational exports)


def engine_pick(preference: str = "auto") -> tuple[str, str]:
    """("vllm" | "transformers", why). "auto" takes vLLM when it is installed and a GPU is visible."""
    if preference == "transformers":
        return "transformers", "transformers generate (asked for)"
    if not torch.cuda.is_available():
        if preference == "vllm":
            raise RuntimeError("vLLM was asked for, but this worker sees no GPU.")
        return "transformers", "transformers generate (no GPU on this worker)"
    try:
        import vllm  # noqa: F401
    except ImportError:
        if preference == "vllm":
            raise RuntimeError("vLLM was asked for but is not installed on this worker: pip install vllm, "
                               "or choose the transformers engine.") from None
        return "transformers", "transformers generate (vLLM is not installed on this GPU worker; pip install vllm for faster sampling)"
    return "vllm", "vLLM"


def _prompt(tokenizer, text: str, sampling: Sampling) -> str:
    return prompt_text(tokenizer, [{"role": "user", "content": text}] if sampling.chat else text)


def generate(
    model_path: str,
    jobs: Sequence[GenerationJob],
    sampling: Sampling,
    *,
    on_response: Callable[[GenerationJob, str], None],
    should_stop: Callable[[], bool] = lambda: False,
    engine: str = "transformers",
) -> bool:
    """Sample one response per job and hand each to on_response as soon as it exists. Returns False
    when should_stop() interrupted it (the responses handed over so far stand)."""
    quiet_libraries()
    if not jobs:
        return True
    if engine == "vllm":
        return _generate_vllm(model_path, jobs, sampling, on_response=on_response, should_stop=should_stop)
    tokenizer = load_tokenizer(model_path, padding_side="left")
    model = load_policy(model_path).eval()
    if torch.cuda.is_available():
        model = model.to("cuda")
    device = next(model.parameters()).device
    for job in jobs:
        if should_stop():
            return False
        ids = tokenizer(_prompt(tokenizer, job.prompt, sampling), return_tensors="pt")["input_ids"][:, -sampling.max_prompt_tokens:]
        torch.manual_seed(job.seed)
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                do_sample=sampling.temperature > 0, temperature=sampling.temperature if sampling.temperature > 0 else None,
                top_p=sampling.top_p if sampling.temperature > 0 else None, max_new_tokens=sampling.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
        on_response(job, tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return True


def _generate_vllm(model_path, jobs, sampling, *, on_response, should_stop) -> bool:
    from vllm import LLM, SamplingParams

    llm = LLM(model=model_path, seed=0)
    tokenizer = llm.get_tokenizer()
    chunk = 64  # between chunks we check for a cancel and hand the chunk's responses over
    for start in range(0, len(jobs), chunk):
        if should_stop():
            return False
        part = jobs[start : start + chunk]
        params = [SamplingParams(temperature=sampling.temperature, top_p=sampling.top_p, max_tokens=sampling.max_new_tokens,
                                 seed=job.seed) for job in part]
        outputs = llm.generate([_prompt(tokenizer, job.prompt, sampling) for job in part], params, use_tqdm=False)
        for job, output in zip(part, outputs):
            on_response(job, output.outputs[0].text.strip())
    return True


def score_responses(reward_model_path: str, items: Sequence[tuple[str, str]], *, max_length: int = 512) -> list[float]:
    """The reward model's score for each (prompt, response), encoded the way the reward model was
    trained (training.runners.common.reward_input_ids, as in training.runners.reward)."""
    quiet_libraries()
    if not items:
        return []
    tokenizer = load_tokenizer(reward_model_path, padding_side="right")
    model = load_reward_model(reward_model_path).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    if torch.cuda.is_available():
        model = model.to("cuda")
    sequences = [reward_input_ids(tokenizer, prompt_text(tokenizer, p), r, max_length, conversational=is_conversational(p))[0]
                 for p, r in items]
    return score_sequences(model, tokenizer, sequences)
