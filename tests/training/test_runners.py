"""Each runner on a tiny local model for a few steps, on a hand-made export, without Django."""

import importlib.util
import json
from pathlib import Path

import pytest

from training.configs import params_resolve
from training.runners.common import RunContext, encode_pair_truncated, load_tokenizer

pytestmark = pytest.mark.slow


def _write_export(root: Path, *, n_train: int = 16, n_test: int = 4) -> Path:
    data = root / "data"
    data.mkdir(parents=True)
    for split, ids in (("train", range(n_train)), ("test", range(n_train, n_train + n_test))):
        with open(data / f"{split}.jsonl", "w") as fh:
            for i in ids:
                fh.write(json.dumps({
                    "prompt": f"Question {i}: what should I do about chest pain?",
                    "chosen": f"Call emergency services now if the pain spreads to your arm {i}.",
                    "rejected": f"It is probably nothing, wait {i}.",
                    "margin": 1.0 + (i % 2), "pair_id": i,
                    "vote_split": {"chosen": 2, "rejected": 1, "tie": 0},
                }) + "\n")
    (data / "manifest.json").write_text(json.dumps({"filters": {"rater_disjoint_test": True}}))
    return data


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from training.runners.tiny_models import build_tiny_causal_lm, build_tiny_reward_model

    root = tmp_path_factory.mktemp("models")
    return {"policy": build_tiny_causal_lm(root / "policy"), "reward": build_tiny_reward_model(root / "reward")}


def _ctx(tmp_path, kind, base, params, **kw):
    reports = []
    ctx = RunContext(kind=kind, data_dir=_write_export(tmp_path), output_dir=tmp_path / "out",
                     config=params_resolve(kind=kind, params=params), base_model=base,
                     report=lambda step, total, metrics: reports.append((step, total, metrics)), **kw)
    return ctx, reports


def test_reward_runner_learns_and_scores_the_heldout_split(tmp_path, models):
    from training.runners import reward

    ctx, reports = _ctx(tmp_path, "reward_model", models["reward"],
                        {"num_train_epochs": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "early_stopping_patience": 0,
                         "validation_fraction": 0})
    result = reward.run(ctx)
    m = result.final_metrics
    assert m["steps"] == 12 and m["n_train"] == 16 and m["n_test"] == 4
    losses = [r[2]["loss"] for r in reports if "loss" in r[2]]
    assert losses[-1] < losses[0]  # the pairs are easy: the loss falls
    assert m["heldout_accuracy"] == 1.0 and m["heldout_margin_weighted_accuracy"] == 1.0
    assert 0 <= m["heldout_ece"] <= 1
    assert m["heldout_physician_agreement_ceiling"] == pytest.approx(1 / 3)
    assert m["heldout_agreement_with_physicians"] == pytest.approx(2 / 3)
    assert m["heldout_rater_disjoint_n_pairs"] == 4
    assert m["tokens_per_second"] > 0
    assert (ctx.output_dir / "model.safetensors").exists() and (ctx.output_dir / "README.md").exists()


def test_truncation_is_deliberate_and_counted(tmp_path, models):
    from training.runners import reward

    tok = load_tokenizer(models["reward"])
    ids, cut = encode_pair_truncated(tok, "a long prompt " * 50, "the answer that matters", 24)
    assert cut and len(ids) == 24 and ids[-1] == tok.eos_token_id
    assert tok.decode(ids).strip().endswith("the answer that matters</s>")  # the prompt lost its start, not the answer

    ctx, _ = _ctx(tmp_path, "reward_model", models["reward"], {"max_steps": 1, "per_device_train_batch_size": 4, "max_length": 12})
    result = reward.run(ctx)
    assert result.final_metrics["rows_truncated"] == 20  # every pair cut, none dropped
    m = result.final_metrics
    assert m["n_train"] + m["n_validation"] == 16 and any("truncated" in n for n in result.notes)


@pytest.mark.parametrize("lora", [False, True])
def test_dpo_runner(tmp_path, models, lora):
    from training.runners import dpo

    ctx, reports = _ctx(tmp_path, "dpo", models["policy"], {"max_steps": 3, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "lora": lora})
    result = dpo.run(ctx)
    assert result.final_metrics["steps"] == 3
    assert any("rewards/accuracies" in r[2] for r in reports)
    assert "heldout_rewards_accuracies" in result.final_metrics
    assert (ctx.output_dir / "config.json").exists()
    assert not (ctx.output_dir / "adapter_config.json").exists()  # LoRA merged before saving


@pytest.mark.parametrize("reward_base", ["tiny", "minilm"])
def test_ppo_runner_with_same_or_foreign_reward_tokenizer(tmp_path, models, reward_base):
    from training.runners import ppo
    from training.runners.tiny_models import minilm_path

    reward_path = models["reward"] if reward_base == "tiny" else minilm_path()
    ctx, reports = _ctx(tmp_path, "ppo", models["policy"],
                        {"total_episodes": 8, "per_device_train_batch_size": 4, "response_length": 8, "num_ppo_epochs": 1},
                        reward_model_path=reward_path)
    result = ppo.run(ctx)
    m = result.final_metrics
    assert m["steps"] == 2 and m["episodes"] == 8
    assert m["kl"] is not None and m["score"] is not None
    assert 1 <= m["response_length"] <= 8
    assert any("objective/kl" in r[2] and "monitor/response_length" in r[2] for r in reports)
    assert any("re-encoded" in n for n in result.notes) == (reward_base == "minilm")
    assert (ctx.output_dir / "model.safetensors").exists()


def test_ppo_stops_when_kl_passes_target(tmp_path, models):
    from training.runners import ppo

    ctx, _ = _ctx(tmp_path, "ppo", models["policy"],
                  {"total_episodes": 16, "per_device_train_batch_size": 4, "response_length": 8, "num_ppo_epochs": 1,
                   "kl_target": 1e-9, "learning_rate": 1e-2},
                  reward_model_path=models["reward"])
    result = ppo.run(ctx)
    assert result.stopped == "kl_target"
    assert result.final_metrics["steps"] < result.final_metrics["planned_steps"]


def test_cancel_stops_training_at_the_next_step(tmp_path, models):
    from training.runners import reward

    ctx, _ = _ctx(tmp_path, "reward_model", models["reward"], {"num_train_epochs": 20, "per_device_train_batch_size": 4})
    ctx.should_stop = lambda: True
    result = reward.run(ctx)
    assert result.stopped == "cancelled" and result.final_metrics["steps"] == 1


@pytest.mark.parametrize("kind", ["grpo", "rloo"])
def test_online_runners(tmp_path, models, kind):
    module = importlib.import_module(f"training.runners.{kind}")
    ctx, reports = _ctx(tmp_path, kind, models["policy"],
                        {"max_steps": 2, "per_device_train_batch_size": 4, "max_completion_length": 8},
                        reward_model_path=models["reward"])
    result = module.run(ctx)
    assert result.final_metrics["steps"] == 2 and result.final_metrics["reward"] is not None
    assert any("completions/mean_length" in r[2] for r in reports)
