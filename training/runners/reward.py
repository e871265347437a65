"""Reward model: TRL RewardTrainer on the export's train split, a one-label sequence classifier
(Bradley-Terry loss, minus the pair's margin when the export has one). Early stopping looks at a
validation share carved from the train rows (prompt-disjoint, `validation_fraction`); the export's
held-out split is scored once, at the end, with training.evaluation.reward_model_report."""

from __future__ import annotations

import json

import torch
from datasets import Dataset
from transformers import set_seed

from training.evaluation import reward_model_report
from training.runners.common import (
    ProgressCallback,
    RunContext,
    RunResult,
    Stopwatch,
    completion_text,
    is_conversational,
    load_reward_model,
    load_tokenizer,
    model_card_write,
    preference_rows,
    prompt_text,
    quiet_libraries,
    read_manifest,
    reward_input_ids,
    save_model,
    stop_reason,
    trainer_dir,
    trainer_quiet,
    trainer_summary,
    validation_split,
    votes_oriented,
)
from training.runners.trl_configs import lora_config_build, trl_config_build


def tokenize_preferences(rows: list[dict], tokenizer, *, max_length: int, use_margin: bool) -> tuple[Dataset, int]:
    """chosen_ids/rejected_ids (+ margin) per row, cut to max_length; returns (dataset, rows cut)."""
    columns: dict[str, list] = {"chosen_ids": [], "rejected_ids": []}
    with_margin = use_margin and rows and all(isinstance(r.get("margin"), (int, float)) for r in rows)
    if with_margin:
        columns["margin"] = []
    cut = 0
    for row in rows:
        conversational = is_conversational(row.get("prompt", ""))
        prompt = prompt_text(tokenizer, row.get("prompt", ""))
        chosen, c_cut = reward_input_ids(tokenizer, prompt, completion_text(row["chosen"]), max_length, conversational=conversational)
        rejected, r_cut = reward_input_ids(tokenizer, prompt, completion_text(row["rejected"]), max_length, conversational=conversational)
        cut += c_cut or r_cut
        columns["chosen_ids"].append(chosen)
        columns["rejected_ids"].append(rejected)
        if with_margin:
            columns["margin"].append(float(row["margin"]))
    return Dataset.from_dict(columns), cut


@torch.no_grad()
def score_sequences(model, tokenizer, sequences: list[list[int]], *, batch_size: int = 16) -> list[float]:
    model.eval()
    device = next(model.parameters()).device
    scores: list[float] = []
    pad = tokenizer.pad_token_id
    for i in range(0, len(sequences), batch_size):
        chunk = sequences[i : i + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, seq in enumerate(chunk):
            ids[j, : len(seq)] = torch.tensor(seq)
            mask[j, : len(seq)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        scores.extend(logits.squeeze(-1).float().cpu().tolist())
    return scores


def heldout_summary(final: dict) -> str:
    """One line for the model card: held-out accuracy, its interval and n, next to the ceiling."""
    line = (f"Held-out accuracy {100 * final['heldout_accuracy']:.1f}% (95% bootstrap CI "
            f"{100 * final['heldout_accuracy_ci_low']:.1f}-{100 * final['heldout_accuracy_ci_high']:.1f}%, "
            f"n = {final['heldout_n_pairs']} pairs, scored once after training)")
    ceiling = final.get("heldout_physician_agreement_ceiling")
    if ceiling is not None:
        line += f"; physicians' pairwise agreement on the same pairs {100 * ceiling:.1f}%"
    return line + "."


def run(ctx: RunContext) -> RunResult:
    from trl import RewardTrainer

    quiet_libraries()
    cfg = ctx.config
    set_seed(cfg["seed"])
    train_rows, test_rows = preference_rows(ctx)
    # Early stopping (and anything else chosen during training) sees only this validation share
    # of the train rows; the held-out test split is scored once, after training.
    train_rows, val_rows = validation_split(train_rows, fraction=cfg.get("validation_fraction", 0.0), seed=cfg["seed"])
    tokenizer = load_tokenizer(ctx.base_model, padding_side="right")
    train_ds, train_cut = tokenize_preferences(train_rows, tokenizer, max_length=cfg["max_length"], use_margin=cfg["use_margin"])
    val_ds, val_cut = tokenize_preferences(val_rows, tokenizer, max_length=cfg["max_length"], use_margin=cfg["use_margin"]) if val_rows else (None, 0)
    test_ds, test_cut = tokenize_preferences(test_rows, tokenizer, max_length=cfg["max_length"], use_margin=False) if test_rows else (None, 0)

    model = load_reward_model(ctx.base_model, new_head_init=cfg["score_head_init"])
    model.config.pad_token_id = tokenizer.pad_token_id
    args = trl_config_build(kind="reward_model", config=cfg, output_dir=trainer_dir(ctx), has_eval=val_ds is not None)
    callback = ProgressCallback(report=ctx.report, should_stop=ctx.should_stop, early_stopping_patience=cfg["early_stopping_patience"])
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        callbacks=[callback],
        peft_config=lora_config_build(config=cfg, task_type="SEQ_CLS"),
    )
    trainer_quiet(trainer)
    clock = Stopwatch()
    output = trainer.train()
    train_seconds = clock.seconds()

    cut = train_cut + val_cut + test_cut
    final = {
        "train_loss": output.training_loss,
        **trainer_summary(trainer, train_seconds),
        "n_train": len(train_rows),
        "n_validation": len(val_rows),
        "n_test": len(test_rows),
        "rows_truncated": cut,
        "max_length": cfg["max_length"],
    }
    if callback.best_eval_accuracy >= 0:
        final["validation_best_accuracy"] = callback.best_eval_accuracy
    notes = []
    if cut:
        notes.append(f"{cut} pair(s) were longer than {cfg['max_length']} tokens and were truncated (prompt start first), not dropped.")

    if test_rows:
        scored_model = trainer.model
        rc = score_sequences(scored_model, tokenizer, test_ds["chosen_ids"])
        rr = score_sequences(scored_model, tokenizer, test_ds["rejected_ids"])
        margins = [float(r["margin"]) for r in test_rows] if all(isinstance(r.get("margin"), (int, float)) for r in test_rows) else None
        votes = [votes_oriented(r) for r in test_rows]
        votes = votes if all(v is not None for v in votes) else None
        # With a rater-disjoint export every held-out pair was judged only by raters who labelled
        # no training pair: the accuracy on it is the rater-disjoint figure.
        disjoint = [True] * len(test_rows) if read_manifest(ctx.data_dir).get("filters", {}).get("rater_disjoint_test") else None
        evaluation = reward_model_report(rewards_chosen=rc, rewards_rejected=rr, margins=margins, votes=votes, rater_disjoint=disjoint)
        final.update({f"heldout_{k}": v for k, v in evaluation.items()})
        notes.append(heldout_summary(final))
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        with open(ctx.output_dir / "heldout_scores.jsonl", "w", encoding="utf-8") as fh:
            for row, a, b in zip(test_rows, rc, rr):
                fh.write(json.dumps({"pair_id": row.get("pair_id"), "reward_chosen": a, "reward_rejected": b}) + "\n")
    else:
        notes.append("The export has no held-out split: no held-out accuracy was measured.")

    result = RunResult(final_metrics=final, stopped=stop_reason(callback, trainer), notes=notes)
    save_model(trainer.model, tokenizer, ctx.output_dir)
    model_card_write(ctx, result)
    return result
