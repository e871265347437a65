"""Shared set-up for training tests: no hub access, artifacts in a temp media folder, and tiny
hyper-parameters so every run takes a few seconds on two CPU cores."""

import pytest

from annotation.models import Batch
from tests import factories

# Small enough for CI, large enough that each trainer takes real optimisation steps.
FAST_PARAMS = {
    "reward_model": {"num_train_epochs": 2, "per_device_train_batch_size": 4, "max_length": 128, "learning_rate": 5e-4},
    "ppo": {"total_episodes": 8, "per_device_train_batch_size": 4, "response_length": 8, "num_ppo_epochs": 1},
    "dpo": {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 128},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def fast_training(settings, media):
    settings.CLINPREF = {**settings.CLINPREF, "TRAINING_AUTO_PARAMS": FAST_PARAMS, "TRAINING_HEARTBEAT_SECONDS": 3600}
    return FAST_PARAMS


def gate_open_batch(*, n_pairs: int = 12, seed: int = 0, state: str = "open", pipeline: str = "reward_model>ppo") -> Batch:
    """A fully judged batch whose agreement gate passes, ready to close."""
    batch, _, _ = factories.judged_batch(n_pairs=n_pairs, n_raters=3, seed=seed, state=state, agreement=0.9)
    Batch.objects.filter(pk=batch.pk).update(min_alpha=-1.0, min_rater_kappa=-1.0, training_pipeline=pipeline)
    batch.refresh_from_db()
    return batch
