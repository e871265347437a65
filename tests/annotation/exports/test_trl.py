"""Both JSONL flavours of an export train TRL's RewardTrainer and DPOTrainer for one step on a
tiny local model (CPU, no hub): the files are what TRL expects, with no glue code."""

import pytest

pytest.importorskip("trl")

from annotation.exports import services as export_services  # noqa: E402
from tests import factories  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, settings, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def exported(admin_user, tmp_path):
    """train.jsonl and train.conversational.jsonl fetched through the storage API, as a worker would."""
    batch, _, _ = factories.judged_batch(n_pairs=8, seed=21, agreement=1.0)
    snap = export_services.export_create(
        batch=batch, params={"formats": ["trl-jsonl", "trl-conversational"], "test_fraction": 0}, created_by=admin_user)
    paths = {}
    for name in ("train.jsonl", "train.conversational.jsonl"):
        local = tmp_path / name
        with export_services.export_open_file(snapshot=snap, name=name) as fh:
            local.write_bytes(fh.read())
        paths[name] = str(local)
    return paths


def _load(path, tmp_path):
    from datasets import load_dataset

    ds = load_dataset("json", data_files=path, split="train", cache_dir=str(tmp_path / "hf"))
    assert len(ds) >= 2
    return ds


def _common(tmp_path, name):
    return dict(output_dir=str(tmp_path / name), max_steps=1, per_device_train_batch_size=2, report_to="none",
                bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, save_strategy="no",
                logging_steps=1, seed=0, max_length=128)


@pytest.mark.parametrize("name", ["train.jsonl", "train.conversational.jsonl"])
def test_reward_trainer_one_step(exported, tmp_path, name):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from training.runners.tiny_models import build_tiny_reward_model

    path = build_tiny_reward_model(tmp_path / "rm")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    ds = _load(exported[name], tmp_path)
    assert "margin" in ds.column_names
    trainer = RewardTrainer(model=model, args=RewardConfig(**_common(tmp_path, "rm-out")), train_dataset=ds,
                            processing_class=tok)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss == result.training_loss  # not NaN


@pytest.mark.parametrize("name", ["train.jsonl", "train.conversational.jsonl"])
def test_dpo_trainer_one_step(exported, tmp_path, name):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from training.runners.tiny_models import build_tiny_causal_lm

    path = build_tiny_causal_lm(tmp_path / "lm")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    ds = _load(exported[name], tmp_path)
    trainer = DPOTrainer(model=model, args=DPOConfig(**_common(tmp_path, "dpo-out")), train_dataset=ds,
                         processing_class=tok)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss == result.training_loss
