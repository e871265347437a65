"""What every runner shares: the context it is called with, the callback that reports progress
and honours cancel, reading the export's JSONL splits, deliberate truncation, and the model card.

Runners never import Django: the service hands them plain paths and two callables,
`report(step, total, metrics)` and `should_stop() -> bool`, and turns their result into rows."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from training.runners.tiny_models import tokenizer_ensure_special_tokens

logger = logging.getLogger("training.runners")

ReportFn = Callable[[int, int, dict], None]
StopFn = Callable[[], bool]


class StopTraining(Exception):
    """Raised from a callback to leave a training loop that ignores `control.should_training_stop`
    (TRL's PPO loop only checks it for saving)."""


@dataclass
class RunContext:
    kind: str
    data_dir: Path  # local copies of the export snapshot's files, under their snapshot names
    output_dir: Path  # the runner saves the final model here; the service uploads it
    config: dict  # resolved params (training.configs.params_resolve)
    base_model: str  # model id or local path of the policy / reward model to start from
    reward_model_path: str | None = None  # local dir of the parent reward model (ppo/grpo/rloo)
    report: ReportFn = lambda step, total, metrics: None
    should_stop: StopFn = lambda: False
    model_card_extra: dict = field(default_factory=dict)  # snapshot id, run id, demo note...


@dataclass
class RunResult:
    final_metrics: dict
    stopped: str = ""  # why training ended early ("cancelled", "kl_target", "early_stopping"), or ""
    notes: list[str] = field(default_factory=list)


def _numbers(logs: dict) -> dict:
    return {k: float(v) for k, v in logs.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class ProgressCallback(TrainerCallback):
    """Reports every log to the run row and stops training when the run is cancelled, when the
    policy's KL passes its target, or when validation accuracy stops improving (the trainer's
    eval split is the validation share carved from the train rows, never the held-out test)."""

    def __init__(
        self,
        *,
        report: ReportFn,
        should_stop: StopFn,
        kl_target: float = 0.0,
        early_stopping_patience: int = 0,
        raise_to_stop: bool = False,
        extra_metrics: Callable[[], dict] | None = None,
    ):
        self.report = report
        self.should_stop = should_stop
        self.kl_target = kl_target
        self.patience = early_stopping_patience
        self.raise_to_stop = raise_to_stop
        self.extra_metrics = extra_metrics
        self.stopped = ""
        self.best_eval_accuracy = -1.0
        self.evals_without_gain = 0
        self.history: list[dict] = []

    def _stop(self, control, reason: str):
        if not self.stopped:
            self.stopped = reason
            logger.info("training.stop_requested", extra={"reason": reason})
        control.should_training_stop = True
        if self.raise_to_stop:
            raise StopTraining(reason)

    def on_train_begin(self, args, state, control, **kwargs):
        self.report(0, int(state.max_steps or 0), {})

    def on_log(self, args, state, control, logs=None, **kwargs):
        metrics = _numbers(logs or {})
        if self.extra_metrics:
            metrics.update(self.extra_metrics())
        metrics.setdefault("epoch", float(state.epoch or 0))
        self.history.append({"step": int(state.global_step), **metrics})
        self.report(int(state.global_step), int(state.max_steps or 0), metrics)
        kl = metrics.get("objective/kl", metrics.get("kl"))
        if self.kl_target and kl is not None and kl > self.kl_target:
            self._stop(control, "kl_target")

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        accuracy = (metrics or {}).get("eval_accuracy")
        if accuracy is None:
            return
        if accuracy > self.best_eval_accuracy + 1e-9:
            self.best_eval_accuracy, self.evals_without_gain = accuracy, 0
        else:
            self.evals_without_gain += 1
            if self.patience and self.evals_without_gain >= self.patience:
                self._stop(control, "early_stopping")

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop():
            self._stop(control, "cancelled")
        elif self.stopped and self.raise_to_stop:
            raise StopTraining(self.stopped)


# ---------------------------------------------------------------- data


def split_file(data_dir: Path, split: str, *, conversational: bool = False) -> Path | None:
    """The export's TRL file for a split: "train.jsonl" / "test.jsonl", or the conversational
    flavour "train.conversational.jsonl" (rendered with the tokenizer's chat template)."""
    name = f"{split}.conversational.jsonl" if conversational else f"{split}.jsonl"
    matches = sorted(Path(data_dir).rglob(name), key=lambda p: len(str(p)))
    return matches[0] if matches else None


def read_jsonl(path: Path | None) -> list[dict]:
    if path is None or not Path(path).exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_manifest(data_dir: Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def preference_rows(ctx: RunContext) -> tuple[list[dict], list[dict]]:
    conversational = bool(ctx.config.get("conversational"))
    train = read_jsonl(split_file(ctx.data_dir, "train", conversational=conversational))
    test = read_jsonl(split_file(ctx.data_dir, "test", conversational=conversational))
    if not train:
        found = ", ".join(str(p.relative_to(ctx.data_dir)) for p in Path(ctx.data_dir).rglob("*") if p.is_file()) or "nothing"
        raise ValueError(f"The export snapshot has no training pairs to learn from (files: {found}).")
    return train, test


def validation_split(rows: list[dict], *, fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation): about `fraction` of the rows, whole prompts at a time (prompt-disjoint,
    like the export's test split), chosen by a seeded shuffle of the distinct prompts. The
    validation share is what early stopping may look at; the held-out test split stays untouched
    until the end. Keeps at least one training prompt; fraction 0 (or one prompt) -> no split."""
    import random
    from collections import Counter

    keys = [json.dumps(row.get("prompt", ""), sort_keys=True) for row in rows]
    sizes = Counter(keys)
    prompts = sorted(sizes)
    if fraction <= 0 or len(prompts) < 2:
        return list(rows), []
    random.Random(seed).shuffle(prompts)
    target, held, taken = fraction * len(rows), set(), 0
    for prompt in prompts[:-1]:
        if taken >= target:
            break
        held.add(prompt)
        taken += sizes[prompt]
    train = [row for row, key in zip(rows, keys) if key not in held]
    validation = [row for row, key in zip(rows, keys) if key in held]
    return train, validation


def votes_oriented(row: dict) -> list[int] | None:
    """A row's physician votes oriented to its chosen answer (+1 chosen, -1 rejected, 0 tie), from
    the export's vote_split counts; None when the row does not carry them."""
    split = row.get("vote_split")
    if isinstance(row.get("votes"), list):
        return [int(v) for v in row["votes"]]
    if not isinstance(split, dict):
        return None
    return [1] * int(split.get("chosen", 0)) + [-1] * int(split.get("rejected", 0)) + [0] * int(split.get("tie", 0))


def is_conversational(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def prompt_text(tokenizer, prompt: Any) -> str:
    """A prompt as the text the policy sees: the chat template's generation prompt for a
    conversational export (when the tokenizer has a template), the plain text otherwise."""
    if is_conversational(prompt):
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        return "\n".join(m.get("content", "") for m in prompt) + "\n"
    return str(prompt or "")


def completion_text(completion: Any) -> str:
    if is_conversational(completion):
        return "\n".join(m.get("content", "") for m in completion)
    return str(completion or "")


def encode_pair_truncated(tokenizer, prompt: str, completion: str, max_length: int) -> tuple[list[int], bool]:
    """Token ids of prompt+completion+eos, cut to max_length on purpose instead of dropped (TRL's
    reward trainer drops longer rows). The prompt loses its start first, since the judged answer and
    its end carry the preference; eos always ends the sequence, where the reward is read."""
    add_bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", True) is not False else []
    if tokenizer.cls_token_id is not None and tokenizer.bos_token_id is None:
        add_bos = [tokenizer.cls_token_id]  # BERT-style encoders expect [CLS] first
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id]
    budget = max_length - len(add_bos) - len(eos)
    truncated = len(p_ids) + len(c_ids) > budget
    if truncated:
        keep_completion = min(len(c_ids), max(budget // 2, budget - len(p_ids)))
        c_ids = c_ids[:keep_completion]
        keep_prompt = budget - len(c_ids)
        p_ids = p_ids[len(p_ids) - keep_prompt:] if keep_prompt > 0 else []
    return add_bos + p_ids + c_ids + eos, truncated


def reward_input_ids(tokenizer, prompt: str, completion: str, max_length: int, *, conversational: bool = False) -> tuple[list[int], bool]:
    """The token ids a reward model reads for prompt + completion, in training and whenever it
    scores: for plain-text rows exactly TRL RewardTrainer's (the strings joined, the eos text
    appended unless the completion ends with it, the tokenizer's own special tokens), so a model
    trained here sees what one trained by a TRL script sees. bench/rm_quality.py measured the
    alternative (prompt and completion tokenised apart, one eos id): 3.5 points lower held-out
    accuracy on PandaLM with everything else equal. A row longer than max_length is cut by
    encode_pair_truncated (prompt start first) instead of dropped, as are conversational rows,
    whose prompt the chat template has already rendered with its own special tokens."""
    if not conversational:
        eos = tokenizer.eos_token or ""
        text = prompt + completion if completion.endswith(eos) else prompt + completion + eos
        ids = tokenizer(text=text)["input_ids"]
        if len(ids) <= max_length:
            return ids, False
    return encode_pair_truncated(tokenizer, prompt, completion, max_length)


def load_tokenizer(path: str, *, padding_side: str | None = None):
    from transformers import AutoTokenizer

    tokenizer = tokenizer_ensure_special_tokens(AutoTokenizer.from_pretrained(path))
    if padding_side:
        tokenizer.padding_side = padding_side
    return tokenizer


def trainer_summary(trainer, seconds: float) -> dict:
    """What every run reports about its training loop: steps, wall time, throughput, hardware."""
    summary = {"steps": trainer.state.global_step, "train_seconds": round(seconds, 3)}
    tokens = getattr(trainer, "_total_train_tokens", None)
    if tokens is not None:
        summary["train_tokens"] = tokens
        summary["tokens_per_second"] = round(tokens / seconds, 1) if seconds > 0 else None
    return {**summary, "gpu_peak_memory_gb": gpu_peak_memory_gb(), **device_summary()}


def gpu_count() -> int:
    """GPUs this process can see (0 on a CPU host)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cpu_threads() -> int:
    return torch.get_num_threads()


def device_summary() -> dict:
    if torch.cuda.is_available():
        return {"device": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count()}
    return {"device": "cpu", "threads": torch.get_num_threads()}


def gpu_peak_memory_gb() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start


def trainer_dir(ctx: RunContext) -> str:
    """Scratch space for the trainer, next to (not inside) the folder that gets uploaded."""
    path = ctx.output_dir.parent / f"{ctx.output_dir.name}-trainer"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def trainer_quiet(trainer) -> None:
    """Drop the callback that prints every log dict to stdout: ours reports them to the run row."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def stop_reason(callback: ProgressCallback, trainer) -> str:
    """Why training ended early, or "" when it ran every planned step anyway."""
    if not callback.stopped:
        return ""
    done = trainer.state.global_step >= (trainer.state.max_steps or 0)
    return "" if done and callback.stopped != "cancelled" else callback.stopped


def load_reward_model(path: str, *, new_head_init: str = "random"):
    """A one-label sequence classifier from any checkpoint: a reward model, a causal LM or a bare
    encoder such as MiniLM. Weights the checkpoint lacks (the score head of a base that has none)
    start as transformers initialises them, or at zero with new_head_init="zero"; a trained head is
    loaded as it is. Shared by the reward runner (its base) and the online policy runners (the
    parent's model)."""
    from trl.trainer.reward_trainer import suppress_seqcls_warning
    from transformers import AutoModelForSequenceClassification

    with suppress_seqcls_warning():
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32, output_loading_info=True)
    if new_head_init == "zero":
        missing = set(info["missing_keys"])
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in missing:
                    param.zero_()
    return model


def load_policy(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def text_preferences(rows: list[dict], tokenizer) -> dict[str, list]:
    """prompt/chosen/rejected columns only (TRL's own tokenisation; extra export columns such as
    votes or ids would trip dataset collation). Conversational rows stay conversational, so the
    tokenizer's chat template is applied by TRL."""
    columns: dict[str, list] = {"prompt": [], "chosen": [], "rejected": []}
    for row in rows:
        columns["prompt"].append(row.get("prompt", ""))
        columns["chosen"].append(row["chosen"])
        columns["rejected"].append(row["rejected"])
    return columns


def save_model(model, tokenizer, output_dir: Path) -> None:
    """Save the final model; a LoRA model is merged first so any host can load the artifact
    without knowing it was trained with adapters."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def model_card_write(ctx: RunContext, result: RunResult) -> None:
    """README.md next to the weights: what data, what base, what figures, and a plain warning on demos."""
    extra = ctx.model_card_extra
    lines = [f"# ClinPref {ctx.kind} model", ""]
    if extra.get("note"):
        lines += [f"> **{extra['note']}**", ""]
    lines += [
        f"- Base model: `{ctx.base_model}`",
        f"- Export snapshot: {extra.get('export', '?')} (batch {extra.get('batch', '?')})",
        f"- Training run: {extra.get('run', '?')}",
    ]
    if ctx.reward_model_path:
        lines.append(f"- Reward model: run {extra.get('parent_run', '?')}")
    if result.stopped:
        lines.append(f"- Stopped early: {result.stopped}")
    lines += ["", "## Configuration", "", "```json", json.dumps(ctx.config, indent=2, sort_keys=True), "```", "",
              "## Final metrics", "", "```json", json.dumps(result.final_metrics, indent=2, sort_keys=True, default=str), "```"]
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in result.notes]
    (ctx.output_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (ctx.output_dir / "training_metrics.json").write_text(
        json.dumps({"final_metrics": result.final_metrics, "stopped": result.stopped, "notes": result.notes}, indent=2, default=str),
        encoding="utf-8",
    )


def quiet_libraries() -> None:
    """Keep worker logs readable: no progress bars or advisory warnings from datasets/transformers."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except Exception:  # cosmetics only
        pass


def online_policy_run(ctx: RunContext, trainer_cls) -> RunResult:
    """GRPO and RLOO: sample several completions per prompt, score them with the parent run's
    reward model (passed to TRL as a reward function with its own tokenizer, so any reward model
    works with any policy), and update the policy against a frozen reference (beta > 0)."""
    from datasets import Dataset
    from transformers import set_seed

    from training.runners.trl_configs import lora_config_build, trl_config_build
    from training.evaluation import policy_monitor_flags

    quiet_libraries()
    cfg = dict(ctx.config)
    set_seed(cfg["seed"])
    if not ctx.reward_model_path:
        raise ValueError(f"{ctx.kind} needs a reward model: run it after a reward_model stage.")
    train_rows, _ = preference_rows(ctx)
    tokenizer = load_tokenizer(ctx.base_model, padding_side="left")
    prompts, seen = [], set()
    for row in train_rows:
        key = json.dumps(row.get("prompt", ""), sort_keys=True)
        if key not in seen:
            seen.add(key)
            prompts.append(row.get("prompt", ""))
    reward_tokenizer = load_tokenizer(ctx.reward_model_path, padding_side="right")
    reward_model = load_reward_model(ctx.reward_model_path).eval().requires_grad_(False)
    reward_model.config.pad_token_id = reward_tokenizer.pad_token_id

    args = trl_config_build(kind=ctx.kind, config=cfg, output_dir=trainer_dir(ctx))
    callback = ProgressCallback(report=ctx.report, should_stop=ctx.should_stop, kl_target=cfg["kl_target"])
    trainer = trainer_cls(
        model=ctx.base_model,
        reward_funcs=reward_model,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tokenizer,
        reward_processing_classes=reward_tokenizer,
        callbacks=[callback],
        peft_config=lora_config_build(config=cfg),
    )
    trainer_quiet(trainer)
    clock = Stopwatch()
    trainer.train()
    seconds = clock.seconds()
    history = callback.history
    last = next((p for p in reversed(history) if "reward" in p), {})
    monitors = policy_monitor_flags(history, kl_limit=cfg["kl_target"] or 6.0, max_length=cfg["max_completion_length"])
    final = {
        **trainer_summary(trainer, seconds),
        "n_prompts": len(prompts),
        "reward": last.get("reward"),
        "kl": last.get("kl"),
        "entropy": last.get("entropy"),
        "response_length": last.get("completions/mean_length"),
        "monitor_flags": monitors["flags"],
        "monitor_flagged": monitors["flagged"],
    }
    result = RunResult(final_metrics=final, stopped=stop_reason(callback, trainer), notes=list(monitors["flags"]))
    save_model(trainer.model, tokenizer, ctx.output_dir)
    model_card_write(ctx, result)
    return result
