"""Resolved run params (training.configs) -> TRL config dataclasses and peft LoRA configs.
Lives with the runners: the only code that imports torch, trl and peft."""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig

from training.configs import ParamsInvalid


def _on_cpu() -> bool:
    return not torch.cuda.is_available()


def _training_args(config: dict, output_dir: str) -> dict[str, Any]:
    """Arguments shared by every TRL config: nothing reported to third parties, nothing pushed,
    no checkpoints (the runner saves the final model itself), CPU-friendly precision."""
    cpu = _on_cpu()
    bf16 = config["bf16"]
    if bf16 is None:
        bf16 = (not cpu) and torch.cuda.is_bf16_supported()
    return dict(
        output_dir=output_dir,
        learning_rate=config["learning_rate"],
        num_train_epochs=config["num_train_epochs"],
        max_steps=config["max_steps"],
        per_device_train_batch_size=config["per_device_train_batch_size"],
        per_device_eval_batch_size=config["per_device_train_batch_size"],
        gradient_accumulation_steps=config["gradient_accumulation_steps"],
        max_grad_norm=config["max_grad_norm"],
        seed=config["seed"],
        data_seed=config["seed"],
        logging_steps=config["logging_steps"],
        bf16=bool(bf16),
        fp16=False,
        # TRL defaults gradient checkpointing on; `activation_checkpointing` is its new name.
        activation_checkpointing=False,
        report_to="none",
        save_strategy="no",
        push_to_hub=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
        use_cpu=cpu,
    )


def trl_config_build(*, kind: str, config: dict, output_dir: str, has_eval: bool = False):
    """The TRL config dataclass for one run. `config` is a resolved params dict."""
    base = _training_args(config, output_dir)
    if kind == "reward_model":
        from trl import RewardConfig

        return RewardConfig(
            **base,
            weight_decay=config["weight_decay"],
            center_rewards_coefficient=config["center_rewards_coefficient"] or None,
            # The runner truncates on purpose and counts what it cut; TRL's own filter would
            # silently drop every longer pair instead.
            max_length=None,
            eval_strategy="epoch" if has_eval else "no",
            remove_unused_columns=False,
        )
    if kind == "dpo":
        from trl import DPOConfig

        return DPOConfig(
            **base,
            beta=config["beta"],
            loss_type=[config["loss_type"]],
            max_length=config["max_length"],
            eval_strategy="epoch" if has_eval else "no",
        )
    if kind == "ppo":
        from trl.experimental.ppo import PPOConfig

        return PPOConfig(
            **base,
            cliprange=config["cliprange"],
            cliprange_value=config["cliprange_value"],
            kl_coef=config["kl_coef"],
            num_ppo_epochs=config["num_ppo_epochs"],
            num_mini_batches=config["num_mini_batches"],
            vf_coef=config["vf_coef"],
            gamma=config["gamma"],
            lam=config["lam"],
            temperature=config["temperature"],
            response_length=config["response_length"],
            total_episodes=config["total_episodes"] or None,
            missing_eos_penalty=config["missing_eos_penalty"] or None,
            whiten_rewards=config["whiten_rewards"],
            stop_token="eos",
            num_sample_generations=0,
            local_rollout_forward_batch_size=config["per_device_train_batch_size"],
        )
    if kind in {"grpo", "rloo"}:
        if kind == "grpo":
            from trl import GRPOConfig as Config
        else:
            from trl import RLOOConfig as Config
        extra = {"epsilon": config["epsilon"]}
        return Config(
            **base,
            beta=config["beta"],
            num_generations=config["num_generations"],
            max_completion_length=config["max_completion_length"],
            temperature=config["temperature"],
            log_completions=False,
            **extra,
        )
    raise ParamsInvalid(f"Unknown training kind {kind!r}.")


def lora_config_build(*, config: dict, task_type: str = "CAUSAL_LM"):
    """A peft LoraConfig when the run asked for LoRA, else None."""
    if not config.get("lora"):
        return None
    return LoraConfig(
        r=config["lora_r"],
        lora_alpha=config["lora_alpha"],
        lora_dropout=config["lora_dropout"],
        target_modules="all-linear",
        task_type=task_type,
    )
