"""DPO: TRL DPOTrainer (beta 0.1 by default) against a frozen reference copy of the base policy.

The reference is loaded explicitly: TRL 1.12 rebuilds a missing reference from the model's name,
which is empty for an in-memory model. With LoRA the reference is the base with adapters off."""

from __future__ import annotations

from datasets import Dataset
from transformers import set_seed

from training.runners.common import (
    ProgressCallback,
    RunContext,
    RunResult,
    Stopwatch,
    load_policy,
    load_tokenizer,
    model_card_write,
    preference_rows,
    quiet_libraries,
    save_model,
    stop_reason,
    text_preferences,
    trainer_dir,
    trainer_quiet,
    trainer_summary,
)
from training.runners.trl_configs import lora_config_build, trl_config_build


def run(ctx: RunContext) -> RunResult:
    from trl import DPOTrainer

    quiet_libraries()
    cfg = ctx.config
    set_seed(cfg["seed"])
    train_rows, test_rows = preference_rows(ctx)
    tokenizer = load_tokenizer(ctx.base_model)
    train_ds = Dataset.from_dict(text_preferences(train_rows, tokenizer))
    test_ds = Dataset.from_dict(text_preferences(test_rows, tokenizer)) if test_rows else None

    model = load_policy(ctx.base_model)
    peft_config = lora_config_build(config=cfg)
    ref_model = None
    if peft_config is None:
        ref_model = load_policy(ctx.base_model)
        ref_model.requires_grad_(False).eval()
    args = trl_config_build(kind="dpo", config=cfg, output_dir=trainer_dir(ctx), has_eval=test_ds is not None)
    callback = ProgressCallback(report=ctx.report, should_stop=ctx.should_stop)
    trainer = DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=test_ds,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=peft_config,
    )
    trainer_quiet(trainer)
    clock = Stopwatch()
    output = trainer.train()
    seconds = clock.seconds()
    final = {
        "train_loss": output.training_loss,
        **trainer_summary(trainer, seconds),
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "beta": cfg["beta"],
    }
    last_train = next((p for p in reversed(callback.history) if "rewards/accuracies" in p), {})
    for key in ("rewards/accuracies", "rewards/margins"):
        if key in last_train:
            final[f"train_{key.replace('/', '_')}"] = last_train[key]
    if test_ds is not None:
        evaluation = trainer.evaluate()
        for key in ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins"):
            if key in evaluation:
                final[f"heldout_{key.removeprefix('eval_').replace('/', '_')}"] = evaluation[key]
    result = RunResult(final_metrics=final, stopped=stop_reason(callback, trainer))
    save_model(trainer.model, tokenizer, ctx.output_dir)
    model_card_write(ctx, result)
    return result
