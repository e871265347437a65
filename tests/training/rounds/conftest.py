"""Rounds need a trained policy and reward model: tiny ones built on the spot and uploaded as the
artifacts of succeeded runs, so generation tests take seconds and never train."""

from pathlib import Path

import pytest

from annotation.exports.services import export_create, export_default_params
from tests import factories
from training import services as training_services
from training.artifacts import artifacts_upload
from training.models import RunKind, RunStatus, TrainingPipeline, TrainingRun


def succeeded_run(*, export, kind, parent=None, base_model, model_dir: Path, stage=0, pipeline=None) -> TrainingRun:
    pipeline = pipeline or TrainingPipeline.objects.create(export=export, spec="reward_model>ppo")
    run = TrainingRun.objects.create(pipeline=pipeline, stage=stage, parent=parent, kind=kind, export=export, status=RunStatus.SUCCEEDED,
                                     base_model=base_model, is_demo=True, config={"seed": 0})
    run.artifact_path, run.artifact_files = artifacts_upload(run.pk, model_dir)
    run.save(update_fields=["artifact_path", "artifact_files"])
    return run


@pytest.fixture
def trained(media, tmp_path):
    """(admin, judged previous batch, its pairs, reward-model run, PPO run)."""
    from training.runners.tiny_models import build_tiny_causal_lm, build_tiny_reward_model

    admin = factories.admin("lead")
    batch, pairs, raters = factories.judged_batch(n_pairs=6, n_raters=3, seed=3, agreement=0.9)
    export = export_create(batch=batch, params=export_default_params(), created_by=admin)
    rm = succeeded_run(export=export, kind=RunKind.REWARD_MODEL, base_model=training_services.DEMO_REWARD_BASE,
                       model_dir=Path(build_tiny_reward_model(tmp_path / "rm", seed=1)))
    ppo = succeeded_run(export=export, kind=RunKind.PPO, parent=rm, stage=1, pipeline=rm.pipeline,
                        base_model=training_services.DEMO_POLICY_BASE, model_dir=Path(build_tiny_causal_lm(tmp_path / "policy", seed=5)))
    return admin, batch, pairs, raters, rm, ppo
