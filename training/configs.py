"""Run parameters: defaults, validation and per-stage resolution (pure, no TRL).

Two layers, so the web process can validate a retrain form without importing TRL:
- `params_resolve(kind=, params=)` (here): fills defaults, coerces types, rejects unknown keys and
  out-of-range values with a message; the result is stored on the run as its resolved config.
- `training.runners.trl_configs.trl_config_build(kind=, config=, output_dir=)`: builds the TRL
  dataclass (RewardConfig, DPOConfig, PPOConfig, GRPOConfig, RLOOConfig) from a resolved config.

Defaults follow the clinical recipe in the issue (PPO: lr 5e-6, clip 0.2, KL 0.05, 4 PPO epochs,
max grad norm 1.0; DPO beta 0.1). On CPU, bf16 and gradient checkpointing are off (TRL turns both
on by default, which makes a CPU run about 5x slower)."""

from __future__ import annotations

from typing import Any



class ParamsInvalid(ValueError):
    """Bad run parameters; services turn it into a 400 with this message. Kept free of Django
    so runners and scripts can import this module anywhere."""

PIPELINES = {
    "reward_model>ppo": ["reward_model", "ppo"],
    "reward_model>grpo": ["reward_model", "grpo"],
    "reward_model>rloo": ["reward_model", "rloo"],
    "reward_model": ["reward_model"],
    "dpo": ["dpo"],
}
# Methods that need a trained reward model from an earlier stage.
NEEDS_REWARD_MODEL = {"ppo", "grpo", "rloo"}

_COMMON: dict[str, Any] = {
    "learning_rate": 5e-6,
    "num_train_epochs": 1.0,
    "max_steps": -1,  # > 0 overrides num_train_epochs
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "max_grad_norm": 1.0,
    "seed": 0,
    "max_length": 512,
    "logging_steps": 1,
    "lora": False,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    # None: decided by the host (bf16 only where a GPU supports it).
    "bf16": None,
    # Train on the export's conversational flavour, rendered with the tokenizer's chat template.
    "conversational": False,
    "num_processes": "auto",
}

PARAM_HELP: dict[str, str] = {
    "num_processes": (
        'Training processes on the worker\'s host, one per GPU. "auto" (default): every GPU the worker sees, '
        "launched with `accelerate launch --multi_gpu` when there are several, in the worker's own process otherwise; "
        "or a whole number >= 1 (more than 1 needs that many GPUs). per_device_train_batch_size is per process."
    ),
}

# GRPO and RLOO: several sampled completions per prompt, scored by the parent reward model.
_ONLINE: dict[str, Any] = {
    **_COMMON,
    "learning_rate": 5e-6,
    "beta": 0.05,
    "num_generations": 4,
    "max_completion_length": 64,
    "temperature": 0.7,
    "epsilon": 0.2,
    "per_device_train_batch_size": 4,
    "kl_target": 6.0,
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "reward_model": {
        **_COMMON,
        "learning_rate": 5e-5,
        "num_train_epochs": 3.0,
        "weight_decay": 0.0,
        "center_rewards_coefficient": 0.01,
        "use_margin": True,
        # How a score head the base model lacks (an encoder such as MiniLM, a causal LM) starts:
        # "random" (transformers' normal init) or "zero" (every pair starts tied; the head is then
        # learned from the judgments alone, not from a random projection the encoder must chase).
        # A head the base already has (a reward model trained onward) is never touched.
        "score_head_init": "random",
        # Share of the TRAIN rows (whole prompts, seeded) kept aside as a validation split: early
        # stopping and anything else decided during training look at it, never at the export's
        # held-out test split, which is scored once, at the end. 0: no validation split.
        "validation_fraction": 0.1,
        # Early stop: evaluate on the validation split every epoch, stop after this many
        # evaluations without a better validation accuracy (0 disables).
        "early_stopping_patience": 2,
    },
    "dpo": {
        **_COMMON,
        "learning_rate": 5e-6,
        "beta": 0.1,
        "loss_type": "sigmoid",
        "max_length": 512,
    },
    "ppo": {
        **_COMMON,
        "learning_rate": 5e-6,
        "cliprange": 0.2,
        "cliprange_value": 0.2,
        "kl_coef": 0.05,
        "num_ppo_epochs": 4,
        "num_mini_batches": 1,
        "vf_coef": 0.1,
        "gamma": 1.0,
        "lam": 0.95,
        "temperature": 0.7,
        "response_length": 64,
        "total_episodes": 0,  # 0: num_train_epochs passes over the prompts
        "missing_eos_penalty": 1.0,
        "whiten_rewards": False,
        "max_prompt_length": 256,
        # Stop when the mean KL to the reference passes this (nats per response); 0 disables.
        "kl_target": 6.0,
    },
    "grpo": dict(_ONLINE),
    "rloo": dict(_ONLINE),
}

# (low, high) inclusive bounds for numbers an admin may type into the retrain form.
_BOUNDS: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-9, 1e-2),
    "num_train_epochs": (0.01, 100),
    "per_device_train_batch_size": (1, 512),
    "gradient_accumulation_steps": (1, 512),
    "max_grad_norm": (0.0, 100.0),
    "max_length": (8, 32768),
    "validation_fraction": (0.0, 0.5),
    "lora_r": (1, 1024),
    "beta": (0.0, 10.0),
    "cliprange": (0.0, 1.0),
    "kl_coef": (0.0, 10.0),
    "num_ppo_epochs": (1, 64),
    "num_generations": (2, 64),
    "temperature": (0.01, 10.0),
    "response_length": (1, 8192),
    "max_completion_length": (1, 8192),
}


def pipeline_stages(pipeline: str) -> list[str]:
    try:
        return list(PIPELINES[pipeline])
    except KeyError:
        raise ParamsInvalid(f"Unknown pipeline {pipeline!r}; use one of: {', '.join(PIPELINES)}.") from None


# String parameters with a fixed set of values, per kind.
_CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "reward_model": {"score_head_init": ("random", "zero")},
    "dpo": {"loss_type": ("sigmoid", "ipo", "hinge", "robust")},
}


def _coerce(key: str, value: Any, default: Any) -> Any:
    if default is None:  # tri-state booleans such as bf16
        if value is None or isinstance(value, bool):
            return value
        raise ParamsInvalid(f"{key}: expected true, false or null.")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "on", "off"}:
            return value.lower() in {"true", "1", "on"}
        raise ParamsInvalid(f"{key}: expected true or false.")
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ParamsInvalid(f"{key}: expected an integer.")
        try:
            number = float(value)
        except ValueError:
            raise ParamsInvalid(f"{key}: expected an integer, got {value!r}.") from None
        if number != int(number):
            raise ParamsInvalid(f"{key}: expected an integer, got {value!r}.")
        return int(number)
    if isinstance(default, float):
        if isinstance(value, bool):
            raise ParamsInvalid(f"{key}: expected a number.")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ParamsInvalid(f"{key}: expected a number, got {value!r}.") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParamsInvalid(f"{key}: expected a string.")
        return value
    return value


def _num_processes_coerce(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        raise ParamsInvalid(f'num_processes: expected "auto" or a whole number >= 1, got {value!r}.')
    if int(value) < 1:
        raise ParamsInvalid(f"num_processes: expected at least 1, got {value!r}.")
    return int(value)


def params_resolve(*, kind: str, params: dict | None) -> dict[str, Any]:
    """Defaults for `kind` overridden by `params`; raises ParamsInvalid on unknown keys,
    wrong types or out-of-range values."""
    if kind not in DEFAULTS:
        raise ParamsInvalid(f"Unknown training kind {kind!r}; use one of: {', '.join(DEFAULTS)}.")
    if params is not None and not isinstance(params, dict):
        raise ParamsInvalid("params must be an object of hyper-parameters.")
    defaults = DEFAULTS[kind]
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        raise ParamsInvalid(f"Unknown parameter(s) for {kind}: {', '.join(unknown)}. Known: {', '.join(sorted(defaults))}.")
    resolved = dict(defaults)
    for key, value in (params or {}).items():
        resolved[key] = _num_processes_coerce(value) if key == "num_processes" else _coerce(key, value, defaults[key])
    for key, (low, high) in _BOUNDS.items():
        if key in resolved and not (low <= resolved[key] <= high):
            raise ParamsInvalid(f"{key}={resolved[key]} is outside [{low}, {high}].")
    for key, allowed in _CHOICES.get(kind, {}).items():
        if resolved[key] not in allowed:
            raise ParamsInvalid(f"{key} must be one of {', '.join(allowed)}.")
    return resolved


def params_for_stages(*, stages: list[str], params: dict | None, strict: bool = True) -> dict[str, dict]:
    """Split one params dict across a pipeline's stages. Accepts either flat keys (applied to every
    stage that knows them) or per-kind sections: {"reward_model": {...}, "ppo": {...}}.
    strict=False ignores sections for kinds the pipeline lacks (deployment-wide defaults)."""
    params = dict(params or {})
    sections = {kind: params.pop(kind) for kind in list(params) if kind in DEFAULTS}
    if not strict:
        sections = {kind: section for kind, section in sections.items() if kind in stages}
    for kind, section in sections.items():
        if kind not in stages:
            raise ParamsInvalid(f"params has a {kind!r} section but the pipeline has no {kind} stage.")
        if not isinstance(section, dict):
            raise ParamsInvalid(f"params.{kind} must be an object.")
    known_anywhere = set().union(*(DEFAULTS[kind] for kind in (stages if strict else DEFAULTS)))
    unknown = sorted(set(params) - known_anywhere)
    if unknown:
        raise ParamsInvalid(f"Unknown parameter(s): {', '.join(unknown)}.")
    resolved = {}
    for kind in stages:
        flat = {k: v for k, v in params.items() if k in DEFAULTS[kind]}
        resolved[kind] = params_resolve(kind=kind, params={**flat, **sections.get(kind, {})})
    return resolved
