"""PPO: TRL's PPOTrainer (trl.experimental.ppo, present up to trl 1.12.0) with the policy, a frozen
reference, a value model initialised from the policy, and the reward model of the parent run.

TRL's PPO feeds the reward model the policy's token ids directly. When the reward model speaks
another vocabulary (the demo's MiniLM encoder next to a tiny Llama policy, or any real pairing of
different families) it is wrapped in TextBridgeReward, which decodes the policy's tokens and
re-encodes them for the reward model. KL to the reference and mean response length are watched:
training stops when KL passes its target."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from datasets import Dataset
from torch import nn
from transformers import set_seed

from training.evaluation import policy_monitor_flags
from training.runners.common import (
    ProgressCallback,
    RunContext,
    RunResult,
    StopTraining,
    Stopwatch,
    load_policy,
    load_reward_model,
    load_tokenizer,
    model_card_write,
    preference_rows,
    prompt_text,
    quiet_libraries,
    save_model,
    trainer_dir,
    trainer_quiet,
    trainer_summary,
)
from training.runners.trl_configs import lora_config_build, trl_config_build


class _BridgeBackbone(nn.Module):
    def __init__(self, bridge: "TextBridgeReward"):
        super().__init__()
        self._bridge = [bridge]  # a list, so the parent is not registered as a submodule (no cycle)

    def forward(self, input_ids, attention_mask=None, **kwargs):
        rewards = self._bridge[0].score_ids(input_ids, attention_mask)
        batch, width = input_ids.shape
        # get_reward() reads the score at the last response token: give every position the
        # sequence's reward so whichever index it picks holds the same value.
        hidden = rewards.view(batch, 1, 1).expand(batch, width, 1)
        return SimpleNamespace(hidden_states=(hidden,))


class TextBridgeReward(nn.Module):
    """Looks like a sequence-classification reward model to TRL's get_reward(), scores with a reward
    model that has its own tokenizer."""

    base_model_prefix = "backbone"

    def __init__(self, reward_model, reward_tokenizer, policy_tokenizer, *, max_length: int = 512):
        super().__init__()
        self.reward_model = reward_model
        self.reward_tokenizer = reward_tokenizer
        self.policy_tokenizer = policy_tokenizer
        self.max_length = max_length
        self.backbone = _BridgeBackbone(self)
        self.score = nn.Identity()

    @torch.no_grad()
    def score_texts(self, texts: list[str]) -> torch.Tensor:
        device = next(self.reward_model.parameters()).device
        enc = self.reward_tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return self.reward_model(**{k: v.to(device) for k, v in enc.items()}).logits.squeeze(-1).float()

    def score_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        mask = attention_mask.bool() if attention_mask is not None else torch.ones_like(input_ids, dtype=torch.bool)
        texts = [self.policy_tokenizer.decode(ids[m], skip_special_tokens=True) for ids, m in zip(input_ids, mask)]
        return self.score_texts(texts).to(input_ids.device)


def reward_for_policy(reward_model_path: str, policy_tokenizer, *, max_length: int):
    """The parent reward model, used as is when it shares the policy's vocabulary and has a `score`
    head (what TRL's PPO expects), else behind a TextBridgeReward."""
    reward_tokenizer = load_tokenizer(reward_model_path, padding_side="right")
    reward_model = load_reward_model(reward_model_path).eval().requires_grad_(False)
    reward_model.config.pad_token_id = reward_tokenizer.pad_token_id
    same_vocab = reward_tokenizer.get_vocab() == policy_tokenizer.get_vocab() and reward_tokenizer.pad_token_id == policy_tokenizer.pad_token_id
    if same_vocab and hasattr(reward_model, "score"):
        return reward_model, False
    return TextBridgeReward(reward_model, reward_tokenizer, policy_tokenizer, max_length=max_length), True


class ResponseLengthMonitor:
    """Wraps the policy's generate() to measure the mean response length of every rollout, which
    TRL's PPO does not log and which is the first sign of length hacking."""

    def __init__(self, policy, eos_token_id: int):
        self.eos_token_id = eos_token_id
        self.last: float | None = None
        original = policy.generate

        def generate(*args, **kwargs):
            out = original(*args, **kwargs)
            sequences = out.sequences if hasattr(out, "sequences") else out
            query = kwargs.get("input_ids", args[0] if args else None)
            if query is not None:
                self.record(sequences[:, query.shape[1]:])
            return out

        policy.generate = generate

    def record(self, responses: torch.Tensor) -> None:
        is_eos = responses == self.eos_token_id
        has_eos = is_eos.any(dim=1)
        first_eos = torch.where(has_eos, is_eos.float().argmax(dim=1) + 1, torch.full_like(has_eos, responses.shape[1], dtype=torch.long))
        self.last = float(first_eos.float().mean())

    def metrics(self) -> dict:
        return {} if self.last is None else {"monitor/response_length": self.last}


def prompt_ids(rows: list[dict], tokenizer, *, max_prompt_length: int) -> list[list[int]]:
    """Distinct prompts, tokenised (PPO needs input_ids); long prompts keep their end, where the
    question usually is."""
    seen, out = set(), []
    for row in rows:
        text = prompt_text(tokenizer, row.get("prompt", ""))
        if text in seen:
            continue
        seen.add(text)
        ids = tokenizer(text)["input_ids"]
        out.append(ids[-max_prompt_length:])
    return out


def run(ctx: RunContext) -> RunResult:
    quiet_libraries()
    from transformers import AutoModelForSequenceClassification
    from trl.experimental.ppo import PPOTrainer

    cfg = dict(ctx.config)
    set_seed(cfg["seed"])
    if not ctx.reward_model_path:
        raise ValueError("PPO needs a reward model: run it after a reward_model stage.")
    train_rows, test_rows = preference_rows(ctx)
    tokenizer = load_tokenizer(ctx.base_model, padding_side="left")  # generation pads on the left
    train_prompts = prompt_ids(train_rows, tokenizer, max_prompt_length=cfg["max_prompt_length"])
    eval_prompts = prompt_ids(test_rows, tokenizer, max_prompt_length=cfg["max_prompt_length"]) or train_prompts
    notes = []
    # TRL's rollout loader drops incomplete batches: a batch larger than the prompt set would
    # never yield one and the loop would spin forever.
    batch_size = min(cfg["per_device_train_batch_size"], len(train_prompts))
    if batch_size < cfg["per_device_train_batch_size"]:
        notes.append(f"Batch size lowered to {batch_size}: the export has only {len(train_prompts)} distinct prompts.")
        cfg["per_device_train_batch_size"] = batch_size
        cfg["num_mini_batches"] = 1

    policy = load_policy(ctx.base_model)
    peft_config = lora_config_build(config=cfg)
    ref_policy = None
    if peft_config is None:
        ref_policy = load_policy(ctx.base_model).eval().requires_grad_(False)
    value_model = AutoModelForSequenceClassification.from_pretrained(ctx.base_model, num_labels=1, dtype=torch.float32)
    value_model.config.pad_token_id = tokenizer.pad_token_id
    reward_model, bridged = reward_for_policy(ctx.reward_model_path, tokenizer, max_length=cfg["max_length"])
    if bridged:
        notes.append("The reward model has its own tokenizer: responses are decoded and re-encoded to score them.")

    args = trl_config_build(kind="ppo", config=cfg, output_dir=trainer_dir(ctx))
    monitor_holder: dict = {}
    callback = ProgressCallback(
        report=ctx.report,
        should_stop=ctx.should_stop,
        kl_target=cfg["kl_target"],
        raise_to_stop=True,
        extra_metrics=lambda: monitor_holder["monitor"].metrics() if "monitor" in monitor_holder else {},
    )
    trainer = PPOTrainer(
        args=args,
        processing_class=tokenizer,
        model=policy,
        ref_model=ref_policy,
        reward_model=reward_model,
        value_model=value_model,
        train_dataset=Dataset.from_dict({"input_ids": train_prompts}),
        eval_dataset=Dataset.from_dict({"input_ids": eval_prompts}),
        callbacks=[callback],
        peft_config=peft_config,
    )
    trainer_quiet(trainer)
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    monitor_holder["monitor"] = ResponseLengthMonitor(unwrapped.policy, tokenizer.eos_token_id)

    clock = Stopwatch()
    try:
        trainer.train()
    except StopTraining:
        pass  # cancelled or KL past its target: keep what was learned so far
    seconds = clock.seconds()
    history = callback.history
    last = history[-1] if history else {}
    monitors = policy_monitor_flags(history, kl_limit=cfg["kl_target"] or 6.0, max_length=cfg["response_length"])
    final = {
        **trainer_summary(trainer, seconds),
        "planned_steps": args.num_total_batches,
        "episodes": trainer.state.episode,
        "n_prompts": len(train_prompts),
        "kl": last.get("objective/kl"),
        "score": last.get("objective/scores"),
        "rlhf_reward": last.get("objective/rlhf_reward"),
        "entropy": last.get("objective/entropy"),
        "response_length": last.get("monitor/response_length"),
        "monitor_flags": monitors["flags"],
        "monitor_flagged": monitors["flagged"],
    }
    notes += monitors["flags"]
    stopped = callback.stopped if callback.stopped == "cancelled" or trainer.state.global_step < args.num_total_batches else ""
    result = RunResult(final_metrics=final, stopped=stopped, notes=notes)
    save_model(unwrapped.policy, tokenizer, ctx.output_dir)
    model_card_write(ctx, result)
    return result
