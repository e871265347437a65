"""The platform's reward model against a bare TRL RewardTrainer script, piece by piece (issue 13):
the same training arguments, the same token ids up to the documented differences, the same scores
however the held-out pairs are batched, and figures that only the end of training ever sees."""

import json

import pytest

from training import configs
from training.evaluation import bootstrap_interval, reward_model_report

# The bare script of the issue (and of bench/rm_quality.py): 2 epochs, lr 5e-5, batch 8,
# center_rewards_coefficient 0.01, the tokenizer's sep token as eos.
BARE = dict(learning_rate=5e-5, num_train_epochs=2, per_device_train_batch_size=8, per_device_eval_batch_size=8, seed=0,
            logging_steps=1, bf16=False, activation_checkpointing=False, report_to="none", save_strategy="no",
            eval_strategy="no", max_length=512, center_rewards_coefficient=0.01, disable_tqdm=True, use_cpu=True)


def test_runner_training_arguments_match_the_bare_script(tmp_path, monkeypatch):
    """Every TrainingArguments/RewardConfig field (optimizer, scheduler, warmup, weight decay, batch,
    accumulation, clipping, dropout, precision, checkpointing) is the bare script's, except the
    three the runner sets on purpose."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    from trl import RewardConfig

    from training.runners.trl_configs import trl_config_build

    cfg = configs.params_resolve(kind="reward_model", params={"num_train_epochs": 2, "early_stopping_patience": 0, "seed": 0})
    runner = trl_config_build(kind="reward_model", config=cfg, output_dir=str(tmp_path)).to_dict()
    bare = RewardConfig(output_dir=str(tmp_path), **BARE).to_dict()
    differ = {k: (runner.get(k), bare.get(k)) for k in set(runner) | set(bare) if runner.get(k) != bare.get(k)}
    assert differ == {
        "max_length": (None, 512),  # the runner truncates (and counts) instead of TRL dropping longer pairs
        "remove_unused_columns": (False, True),  # the runner's dataset is already tokenised
        "data_seed": (0, None),  # None means "use seed": the same shuffle
    }


def test_runner_token_ids_are_exactly_trls(tmp_path):
    """The runner gives TRL RewardTrainer's own ids, from TRL's own _prepare_dataset, for MiniLM
    (BERT) and for a Llama-style tokenizer alike (before issue 13 it tokenised prompt and completion
    apart: a word boundary where TRL joins the strings, one [SEP] where TRL's appended eos text gives
    two). Issue 13 suspected this; bench/rm_quality.py found it was not the gap's cause (the score
    head's start was, see the seeded-head test below), but identical ids keep the runner a bare TRL
    script by construction. Only a pair longer than max_length differs: cut (and counted) where TRL
    drops it."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from training.runners.common import load_tokenizer
    from training.runners.reward import tokenize_preferences
    from training.runners.tiny_models import build_tiny_reward_model, minilm_path

    rows = [{"prompt": "What should I do about chest pain?\n", "chosen": "Call emergency services now.", "rejected": "Wait."},
            {"prompt": "Role: Social Media Marketer", "chosen": "The personality traits", "rejected": "1. Excellent"}]
    for path in (minilm_path(), build_tiny_reward_model(tmp_path / "llama-rm")):
        runner, cut = tokenize_preferences(rows, load_tokenizer(path), max_length=512, use_margin=False)
        trl_tok = AutoTokenizer.from_pretrained(path)
        trl_tok.eos_token = trl_tok.eos_token or trl_tok.sep_token  # what a TRL script does for an encoder
        trl_tok.pad_token = trl_tok.pad_token or trl_tok.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        args = RewardConfig(output_dir=str(tmp_path / "trl"), report_to="none", use_cpu=True, max_length=512)
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=trl_tok)
        trl_ids = trainer.train_dataset
        assert cut == 0
        assert runner["chosen_ids"] == trl_ids["chosen_ids"] and runner["rejected_ids"] == trl_ids["rejected_ids"], path

    # Longer than max_length: cut from the prompt's start, the completion and eos kept (TRL would drop the row).
    long = [{"prompt": "history " * 300, "chosen": "Call now.", "rejected": "Wait."}]
    tok = load_tokenizer(minilm_path())
    cut_rows, cut = tokenize_preferences(long, tok, max_length=64, use_margin=False)
    assert cut == 1 and len(cut_rows["chosen_ids"][0]) == 64 and cut_rows["chosen_ids"][0][-1] == tok.eos_token_id
    assert tok.decode(cut_rows["chosen_ids"][0][-4:-1]) == "call now."


@pytest.mark.slow
def test_heldout_scores_do_not_depend_on_batching(tmp_path):
    """The runner scores held-out pairs in right-padded batches; one at a time gives the same rewards."""
    import torch

    from training.runners.common import load_reward_model, load_tokenizer
    from training.runners.reward import score_sequences
    from training.runners.tiny_models import build_tiny_reward_model

    path = build_tiny_reward_model(tmp_path / "rm")
    tok, model = load_tokenizer(path, padding_side="right"), load_reward_model(path)
    model.config.pad_token_id = tok.pad_token_id
    seqs = [tok(t)["input_ids"] + [tok.eos_token_id] for t in ("Call now.", "It is probably nothing, wait and see.", "Take aspirin.")]
    batched = score_sequences(model, tok, seqs)
    with torch.no_grad():
        single = [model(input_ids=torch.tensor([s])).logits.item() for s in seqs]
    assert batched == pytest.approx(single, abs=1e-5)


def test_validation_split_is_prompt_disjoint_seeded_and_sized():
    from training.runners.common import validation_split

    rows = [{"prompt": f"q{i // 2}", "chosen": f"a{i}", "rejected": f"b{i}"} for i in range(40)]  # 20 prompts x 2
    train, val = validation_split(rows, fraction=0.2, seed=0)
    assert len(train) + len(val) == 40 and len(val) == 8
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in val}
    assert validation_split(rows, fraction=0.2, seed=0) == (train, val)
    assert validation_split(rows, fraction=0.2, seed=1)[1] != val
    assert validation_split(rows, fraction=0.0, seed=0) == (rows, [])
    assert validation_split(rows[:2], fraction=0.5, seed=0) == (rows[:2], [])  # one prompt: nothing to carve


def test_validation_fraction_is_a_validated_run_param():
    assert configs.params_resolve(kind="reward_model", params={})["validation_fraction"] == 0.1
    assert configs.params_resolve(kind="reward_model", params={"validation_fraction": "0.2"})["validation_fraction"] == 0.2
    for bad in (0.6, -0.1, "a lot"):
        with pytest.raises(configs.ParamsInvalid):
            configs.params_resolve(kind="reward_model", params={"validation_fraction": bad})


def test_heldout_accuracy_carries_a_bootstrap_interval_and_n():
    report = reward_model_report(rewards_chosen=[1.0] * 60 + [0.0] * 40, rewards_rejected=[0.0] * 100)
    assert report["n_pairs"] == 100 and report["accuracy"] == 0.6
    assert 0.49 < report["accuracy_ci_low"] < 0.6 < report["accuracy_ci_high"] < 0.71
    assert bootstrap_interval([1, 0, 1, 1]) == bootstrap_interval([1, 0, 1, 1])  # seeded
    low, high = bootstrap_interval([1.0] * 30)
    assert low == high == 1.0


@pytest.mark.slow
def test_early_stopping_sees_validation_rows_and_the_test_split_is_scored_once(tmp_path, monkeypatch):
    from tests.training.test_runners import _write_export
    from training.runners import reward
    from training.runners.common import RunContext
    from training.runners.tiny_models import build_tiny_reward_model

    evaluated = []
    real_score = reward.score_sequences
    monkeypatch.setattr(reward, "score_sequences", lambda *a, **k: evaluated.append(len(a[2])) or real_score(*a, **k))
    ctx = RunContext(kind="reward_model", data_dir=_write_export(tmp_path, n_train=20, n_test=4), output_dir=tmp_path / "out",
                     config=configs.params_resolve(kind="reward_model", params={
                         "num_train_epochs": 2, "per_device_train_batch_size": 4, "validation_fraction": 0.2, "early_stopping_patience": 1}),
                     base_model=build_tiny_reward_model(tmp_path / "rm"))
    result = reward.run(ctx)
    m = result.final_metrics
    assert (m["n_train"], m["n_validation"], m["n_test"]) == (16, 4, 4)
    assert "validation_best_accuracy" in m  # the trainer's per-epoch evaluation ran on the validation rows
    assert evaluated == [4, 4]  # the held-out split: chosen and rejected scored once, at the end
    assert m["heldout_n_pairs"] == 4 and m["heldout_accuracy_ci_low"] <= m["heldout_accuracy"] <= m["heldout_accuracy_ci_high"]
    card = (ctx.output_dir / "README.md").read_text()
    assert "95% bootstrap CI" in card and "n = 4 pairs" in card and "physicians' pairwise agreement" in card
    assert json.loads((ctx.output_dir / "training_metrics.json").read_text())["final_metrics"]["heldout_n_pairs"] == 4


@pytest.mark.parametrize("final, shown, hidden", [
    ({"heldout_accuracy": 0.612, "heldout_accuracy_ci_low": 0.55, "heldout_accuracy_ci_high": 0.671, "heldout_n_pairs": 255,
      "heldout_physician_agreement_ceiling": 0.969}, ["61%", "95% CI 55–67%, n = 255 pairs", "physicians agree 97%"], False),
    ({"heldout_accuracy": 0.7, "heldout_n_pairs": 10}, ["70%", "n = 10 pairs"], False),  # a run from before the interval
    ({}, [], True),
])
def test_run_page_shows_the_heldout_interval_and_n(admin_user, tmp_path, settings, final, shown, hidden):
    from django.test import Client

    from annotation.exports.services import export_create
    from tests import factories
    from training.models import TrainingPipeline, TrainingRun

    settings.MEDIA_ROOT = tmp_path
    batch, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=4)
    snapshot = export_create(batch=batch, params=None, created_by=admin_user)
    run = TrainingRun.objects.create(pipeline=TrainingPipeline.objects.create(export=snapshot, spec="reward_model"),
                                     kind="reward_model", export=snapshot, status="succeeded", final_metrics=final)
    client = Client()
    client.force_login(admin_user)
    body = client.get(f"/dashboard/training/{run.pk}/").content.decode()
    box = body.split('id="run-heldout"')[1].split('id="run-heldout-sub"')[0]
    assert ("hidden" in box.split(">")[0]) is hidden
    sub = body.split('id="run-heldout-sub">')[1].split("</div>")[0]
    for text in shown:
        assert text in body.split('id="run-heldout"')[1].split("</div></div>")[0], text
    if hidden:
        assert sub == ""


@pytest.mark.slow
def test_the_runner_and_a_bare_trl_script_with_the_same_seed_train_the_same_model(tmp_path):
    """Issue 13's cause, pinned: MiniLM has no score head, so the head starts random. The runner seeds
    it with the run's seed; the issue's bare script drew it from wherever the RNG stood. Seeded the
    same way, the bare script trains the runner's model exactly (the same held-out rewards), so the
    plumbing costs nothing; bench/rm_quality.py shows the same on PandaLM (54.5% both at seed 0)."""
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl import RewardConfig, RewardTrainer

    from tests.training.test_runners import _write_export
    from training.runners import reward
    from training.runners.common import RunContext
    from training.runners.tiny_models import minilm_path

    data = _write_export(tmp_path, n_train=16, n_test=4)
    params = {"num_train_epochs": 1, "per_device_train_batch_size": 4, "validation_fraction": 0.0,
              "early_stopping_patience": 0, "seed": 3}
    config = configs.params_resolve(kind="reward_model", params=params)
    reward.run(RunContext(kind="reward_model", data_dir=data, output_dir=tmp_path / "out", config=config, base_model=minilm_path()))
    runner = [json.loads(line) for line in (tmp_path / "out" / "heldout_scores.jsonl").read_text().splitlines()]

    set_seed(3)  # the one thing the script did not do
    tok = AutoTokenizer.from_pretrained(minilm_path())
    tok.eos_token = tok.sep_token
    model = AutoModelForSequenceClassification.from_pretrained(minilm_path(), num_labels=1)
    files = load_dataset("json", data_files={"train": str(data / "train.jsonl"), "test": str(data / "test.jsonl")})
    args = RewardConfig(output_dir=str(tmp_path / "bare"), **{**BARE, "num_train_epochs": 1, "per_device_train_batch_size": 4, "seed": 3})
    trainer = RewardTrainer(model=model, args=args, train_dataset=files["train"].select_columns(["prompt", "chosen", "rejected", "margin"]),
                            processing_class=tok)
    trainer.train()
    test = trainer._prepare_dataset(files["test"].select_columns(["prompt", "chosen", "rejected"]), tok, args, "test")
    import torch

    trainer.model.eval()
    with torch.no_grad():
        bare = [(trainer.model(input_ids=torch.tensor([c])).logits.item(), trainer.model(input_ids=torch.tensor([r])).logits.item())
                for c, r in zip(test["chosen_ids"], test["rejected_ids"])]
    assert [(s["reward_chosen"], s["reward_rejected"]) for s in runner] == [pytest.approx(pair, abs=1e-4) for pair in bare]


def test_score_head_init_zeroes_only_a_head_the_base_lacks(tmp_path):
    """score_head_init="zero" starts MiniLM's missing classifier at zero (every pair tied, the head
    learned from the judgments alone); the encoder and pooler are the checkpoint's either way, and a
    head the checkpoint already has (a reward model trained onward) is loaded untouched."""
    import torch

    from training.runners.common import load_reward_model
    from training.runners.tiny_models import build_tiny_reward_model, minilm_path

    random_head, zero_head = load_reward_model(minilm_path()), load_reward_model(minilm_path(), new_head_init="zero")
    assert torch.count_nonzero(random_head.classifier.weight) > 0
    assert torch.count_nonzero(zero_head.classifier.weight) == 0 and torch.count_nonzero(zero_head.classifier.bias) == 0
    for (name, a), (_, b) in zip(random_head.named_parameters(), zero_head.named_parameters()):
        if not name.startswith("classifier."):
            assert torch.equal(a, b), name

    trained = build_tiny_reward_model(tmp_path / "rm")
    kept, again = load_reward_model(trained, new_head_init="zero"), load_reward_model(trained)
    assert torch.count_nonzero(kept.score.weight) > 0 and torch.equal(kept.score.weight, again.score.weight)


@pytest.mark.parametrize("kind, key, value, ok", [
    ("reward_model", "score_head_init", "zero", True), ("reward_model", "score_head_init", "random", True),
    ("reward_model", "score_head_init", "xavier", False), ("reward_model", "score_head_init", 0, False),
    ("dpo", "loss_type", "ipo", True), ("dpo", "loss_type", "kto", False),
])
def test_string_params_with_fixed_values_are_checked(kind, key, value, ok):
    if ok:
        assert configs.params_resolve(kind=kind, params={key: value})[key] == value
    else:
        with pytest.raises(configs.ParamsInvalid, match=key):
            configs.params_resolve(kind=kind, params={key: value})
