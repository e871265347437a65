"""From a closed batch to trained models, through the real services and (eager) Celery tasks."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation.models import AuditEvent, Batch
from annotation.labeling.services import batch_close
from tests import factories
from tests.conftest import client_for
from tests.training.conftest import FAST_PARAMS, gate_open_batch
from training import batch_closed, services, worker
from training.models import RunStatus, TrainingMetric, TrainingPipeline, TrainingRun

pytestmark = pytest.mark.slow


@pytest.mark.django_db
def test_closing_a_batch_trains_reward_model_then_ppo(fast_training, django_capture_on_commit_callbacks):
    admin = factories.admin("lead")
    batch = gate_open_batch()
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch_id=batch.pk, actor=admin)

    pipeline = TrainingPipeline.objects.get(trigger_key=f"batch_closed:{batch.pk}")
    rm, ppo = pipeline.runs.order_by("stage")
    assert (rm.kind, ppo.kind) == ("reward_model", "ppo")
    assert rm.status == RunStatus.SUCCEEDED, rm.error + rm.log_tail[-2000:]
    assert ppo.status == RunStatus.SUCCEEDED, ppo.error + ppo.log_tail[-2000:]
    assert ppo.parent_id == rm.pk and rm.export_id == ppo.export_id

    # Demo bases are said plainly, on the run and in the model card.
    assert rm.is_demo and rm.base_model == services.DEMO_REWARD_BASE and "not a clinical model" in rm.note
    assert ppo.is_demo and ppo.base_model == services.DEMO_POLICY_BASE
    card = default_storage.open(f"{rm.artifact_path}README.md").read().decode()
    assert "not a clinical model" in card

    # The reward model learned something measurable and reported it as it went.
    assert rm.progress == 1.0 and rm.current_step == rm.total_steps > 0
    assert rm.final_metrics["n_train"] > 0 and rm.final_metrics["train_loss"] > 0
    assert TrainingMetric.objects.filter(run=rm, values__has_key="loss").exists()
    assert {f["name"] for f in rm.artifact_files} >= {"config.json", "model.safetensors", "README.md"}
    assert rm.config["num_train_epochs"] == FAST_PARAMS["reward_model"]["num_train_epochs"]

    # PPO logged the reward-hacking monitors.
    assert ppo.final_metrics["kl"] is not None and ppo.final_metrics["response_length"] is not None
    assert ppo.final_metrics["monitor_flagged"] in (True, False)
    assert ppo.heartbeat_at and ppo.host and ppo.finished_at >= ppo.started_at

    actions = set(AuditEvent.objects.filter(batch_id=batch.pk).values_list("action", flat=True))
    assert {"export.created", "training_run.created", "training_run.started", "training_run.succeeded"} <= actions


@pytest.mark.django_db
def test_dpo_run_from_the_api_and_detail_with_metrics(fast_training, django_capture_on_commit_callbacks):
    admin = factories.admin("lead")
    batch = gate_open_batch(state="closed", pipeline="dpo")
    from annotation.exports.services import export_create, export_default_params

    export = export_create(batch=batch, params=export_default_params(), created_by=admin)
    client = client_for(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/training-runs/", {"export": export.pk, "pipeline": "dpo", "params": {"dpo": FAST_PARAMS["dpo"]}},
                               format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["runs"][0]["id"]
    run = TrainingRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED, run.error + run.log_tail[-2000:]
    assert run.final_metrics["steps"] == 2 and run.final_metrics["beta"] == 0.1

    detail = client.get(f"/api/training-runs/{run_id}/").json()
    assert detail["status"] == "succeeded" and detail["is_demo"] is True
    assert detail["metrics"]["charts"]["loss"], detail["metrics"]
    assert detail["comparison"]["previous_run"] is None

    # A retrain on the same data compares itself with the first run.
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post("/api/training-runs/", {"export": export.pk, "pipeline": "dpo", "params": {"dpo": FAST_PARAMS["dpo"]}},
                            format="json").json()["runs"][0]["id"]
    comparison = client.get(f"/api/training-runs/{again}/").json()["comparison"]
    assert comparison["previous_run"] == run_id and comparison["same_export"] is True
    assert "train_loss" in comparison["metrics"]

    # Train onward: a policy run may start from the policy an earlier run trained (run:<id>).
    with django_capture_on_commit_callbacks(execute=True):
        onward = client.post("/api/training-runs/", {"export": export.pk, "pipeline": "dpo", "base_model": f"run:{run_id}",
                                                     "params": {"dpo": FAST_PARAMS["dpo"]}}, format="json")
    assert onward.status_code == 201, onward.content
    onward = TrainingRun.objects.get(pk=onward.json()["runs"][0]["id"])
    assert onward.base_model == f"run:{run_id}" and onward.is_demo
    assert onward.status == RunStatus.SUCCEEDED, onward.error + onward.log_tail[-2000:]

    listing = client.get("/api/training-runs/?kind=dpo").json()
    assert listing["count"] == 3


@pytest.mark.django_db
def test_gate_blocks_training_without_override(media, django_capture_on_commit_callbacks):
    admin = factories.admin("lead")
    batch = gate_open_batch()
    Batch.objects.filter(pk=batch.pk).update(min_alpha=1.1)  # unreachable
    with django_capture_on_commit_callbacks(execute=True):
        batch_close(batch_id=batch.pk, actor=admin)
    assert not TrainingRun.objects.exists()
    event = AuditEvent.objects.get(action="training.gate_blocked", batch_id=batch.pk)
    assert event.data["reasons"]
    # The batch itself says so (the handler decides from it, not from the audit trail).
    batch.refresh_from_db()
    assert batch.gate_blocked_at is not None and batch.gate_blocked_reasons == event.data["reasons"]
    from annotation.labeling.selectors import batch_close_outcome

    assert batch_close_outcome(batch=batch)["state"] == "gate_blocked"
    # A retried event does not write a second note, even with the audit trail out of the picture.
    batch_closed.batch_closed_handle(batch_id=batch.pk)
    assert AuditEvent.objects.filter(action="training.gate_blocked", batch_id=batch.pk).count() == 1
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_gate_override_reason_lets_training_start(media, settings):
    settings.CLINPREF = {**settings.CLINPREF, "TRAINING_AUTO_PARAMS": FAST_PARAMS}
    batch = gate_open_batch(state="closed", pipeline="reward_model")
    Batch.objects.filter(pk=batch.pk).update(min_alpha=1.1, gate_override_reason="Pilot batch, reviewed by hand.")
    pipeline = batch_closed.batch_closed_handle(batch_id=batch.pk)
    assert pipeline is not None and pipeline.runs.get().status == RunStatus.QUEUED  # on_commit not run here
    assert AuditEvent.objects.filter(action="training.gate_overridden", batch_id=batch.pk).exists()
    # Exactly once: a second delivery of the event starts nothing.
    assert batch_closed.batch_closed_handle(batch_id=batch.pk) is None
    assert TrainingPipeline.objects.count() == 1


def _queued_pipeline(spec="reward_model>ppo", seed=0):
    from annotation.exports.services import export_create, export_default_params

    batch = gate_open_batch(state="closed", n_pairs=6, seed=seed)
    export = export_create(batch=batch, params=export_default_params(), created_by=None)
    return services.pipeline_start(export=export, pipeline=spec, params=FAST_PARAMS, created_by=None, strict_params=False)


@pytest.mark.django_db
def test_cancel_queued_run_cancels_its_children(media):
    admin = factories.admin("lead")
    rm, ppo = _queued_pipeline()
    response = client_for(admin).post(f"/api/training-runs/{rm.pk}/cancel/")
    assert response.status_code == 202
    rm.refresh_from_db(), ppo.refresh_from_db()
    assert rm.status == ppo.status == RunStatus.CANCELLED and rm.cancel_requested
    # Cancelling twice is a conflict, not a 500.
    assert client_for(admin).post(f"/api/training-runs/{rm.pk}/cancel/").status_code == 409
    # A worker that picks the revoked message up anyway does nothing.
    assert worker.run_execute(run_id=rm.pk) is None


@pytest.mark.django_db
def test_cancel_running_run_stops_at_next_step(media, monkeypatch):
    rm, _ = _queued_pipeline(spec="reward_model")[0], None
    TrainingRun.objects.filter(pk=rm.pk).update(config={**rm.config, "num_train_epochs": 50})
    calls = {"n": 0}
    original = worker.RunReporter.report

    def report_then_cancel(self, step, total, metrics):
        original(self, step, total, metrics)
        calls["n"] += 1
        if calls["n"] == 2:  # an admin presses cancel while the run trains
            services.run_cancel(run_id=rm.pk, actor=None)

    monkeypatch.setattr(worker.RunReporter, "report", report_then_cancel)
    monkeypatch.setattr(worker.RunReporter, "__init__", lambda self, run_id, poll=0.0: (
        setattr(self, "run_id", run_id), setattr(self, "poll", 0.0), setattr(self, "_checked_at", 0.0), setattr(self, "_cancelled", False))[0])
    run = worker.run_execute(run_id=rm.pk)
    assert run.status == RunStatus.CANCELLED
    assert run.final_metrics["stopped"] == "cancelled"
    assert run.current_step < run.total_steps


@pytest.mark.django_db
def test_reaper_fails_runs_whose_worker_died(media):
    rm, ppo = _queued_pipeline()
    stale = timezone.now() - timedelta(hours=1)
    TrainingRun.objects.filter(pk=rm.pk).update(status=RunStatus.RUNNING, heartbeat_at=stale, started_at=stale, host="gpu-7")
    fresh = _queued_pipeline(spec="dpo", seed=1)[0]
    TrainingRun.objects.filter(pk=fresh.pk).update(status=RunStatus.RUNNING, heartbeat_at=timezone.now())

    assert services.runs_reap_stale(older_than=timedelta(minutes=10)) == [rm.pk]
    rm.refresh_from_db(), ppo.refresh_from_db(), fresh.refresh_from_db()
    assert rm.status == RunStatus.FAILED and "gpu-7" in rm.error
    assert ppo.status == RunStatus.CANCELLED
    assert fresh.status == RunStatus.RUNNING
    assert AuditEvent.objects.filter(action="training_run.reaped", object_id=str(rm.pk)).exists()


@pytest.mark.django_db
def test_reaper_can_requeue(media, settings):
    settings.CLINPREF = {**settings.CLINPREF, "TRAINING_REAP_POLICY": "requeue"}
    rm, _ = _queued_pipeline()
    TrainingRun.objects.filter(pk=rm.pk).update(status=RunStatus.RUNNING, attempts=1, heartbeat_at=timezone.now() - timedelta(hours=1))
    old_task = rm.celery_task_id
    assert services.runs_reap_stale(older_than=timedelta(minutes=10)) == [rm.pk]
    rm.refresh_from_db()
    assert rm.status == RunStatus.QUEUED and rm.celery_task_id != old_task


@pytest.mark.django_db
def test_failed_run_records_error_and_cancels_children(media):
    rm, ppo = _queued_pipeline()
    TrainingRun.objects.filter(pk=rm.pk).update(base_model="/nonexistent/model")
    run = worker.run_execute(run_id=rm.pk)
    ppo.refresh_from_db()
    assert run.status == RunStatus.FAILED and run.error
    assert ppo.status == RunStatus.CANCELLED


@pytest.mark.django_db
def test_api_is_admin_only_and_rejects_bad_input(media, physician_client, admin_client):
    assert physician_client.get("/api/training-runs/").status_code == 403
    rm, _ = _queued_pipeline()
    cases = [
        {"export": rm.export_id, "pipeline": "nope"},
        {"export": rm.export_id, "params": {"learning_rate": "fast"}},
        {"export": rm.export_id, "params": {"warp_speed": 9}},
        {"export": rm.export_id, "params": {"ppo": {"kl_coef": -1}}},
        {"export": rm.export_id, "pipeline": "dpo", "params": {"ppo": {"kl_coef": 0.1}}},
        {"export": "x"},
    ]
    for body in cases:
        response = admin_client.post("/api/training-runs/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert response.json()["detail"]
    assert admin_client.post("/api/training-runs/", {"export": 999999}, format="json").status_code == 404
    # run:<id> bases: the run must exist, have succeeded and be of the same family.
    missing = admin_client.post("/api/training-runs/", {"export": rm.export_id, "base_model": "run:999999"}, format="json")
    assert missing.status_code == 404 and "no training run 999999" in missing.json()["detail"]
    unfinished = admin_client.post("/api/training-runs/", {"export": rm.export_id, "pipeline": "reward_model",
                                                           "base_model": f"run:{rm.pk}"}, format="json")
    assert unfinished.status_code == 409 and "that queued" in unfinished.json()["detail"]
    wrong_family = admin_client.post("/api/training-runs/", {"export": rm.export_id, "pipeline": "dpo",
                                                             "base_model": f"run:{rm.pk}"}, format="json")
    assert wrong_family.status_code == 409 and "a policy run" in wrong_family.json()["detail"]
    assert admin_client.get("/api/training-runs/999999/").status_code == 404
    assert admin_client.get("/api/training-runs/?status=bogus").status_code == 400
