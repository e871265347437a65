"""Writes of the training domain, the life cycle of a run: start pipelines, cancel, reap runs
whose worker died, and the state changes a worker makes (claim, succeed, fail). Keyword-only,
audited. What a worker does with a claimed run is in worker.py; how the trainer itself is started
(in process or under `accelerate launch`) is in launching.py; what a closed batch starts is in
batch_closed.py. Runs are queued through dispatch.py (never by importing the tasks)."""

from __future__ import annotations

import logging
import socket
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, NotFound
from annotation.models import ExportSnapshot

from . import configs, dispatch
from .conf import stale_after, training_setting
from .models import POLICY_KINDS, RunKind, RunStatus, TrainingPipeline, TrainingRun

logger = logging.getLogger("training")

DEMO_REWARD_BASE = "demo:minilm-l6"
DEMO_POLICY_BASE = "demo:tiny-llama"
DEMO_NOTE = (
    "DEMO RUN - not a clinical model. No base model was configured, so the reward model starts from the small "
    "general-purpose MiniLM-L6 sentence encoder shipped with the app and any policy from a tiny, randomly "
    "initialised 2-layer model built on the worker. Its outputs mean nothing clinically."
)


# ---------------------------------------------------------------- starting


# A base model may be the model an earlier run trained: "run:<id>". The worker fetches that run's
# artifacts through storage, so a round's policy and reward model train onward from the last ones.
RUN_BASE_PREFIX = "run:"


def run_base(run: TrainingRun) -> str:
    return f"{RUN_BASE_PREFIX}{run.pk}"


def run_base_source(base_model: str) -> TrainingRun | None:
    """The run behind a "run:<id>" base model (None for a hub id or a path)."""
    if not base_model.startswith(RUN_BASE_PREFIX):
        return None
    run_id = base_model[len(RUN_BASE_PREFIX):]
    run = TrainingRun.objects.filter(pk=int(run_id)).first() if run_id.isdigit() else None
    if run is None:
        raise NotFound(f"base_model {base_model!r}: there is no training run {run_id}; use run:<id> of a succeeded run.")
    return run


def base_model_resolve(*, kind: str, base_model: str) -> tuple[str, bool]:
    """(base model, is_demo). Empty means: the configured default for this kind, else the demo
    models (MiniLM reward model, tiny local policy), marked as such. "run:<id>" is the model a
    succeeded run of the same family trained (a reward model for a reward model, a policy for a
    policy); it is a demo when that run was."""
    source = run_base_source(base_model)
    if source is not None:
        wanted = "a reward-model run" if kind == RunKind.REWARD_MODEL else "a policy run (ppo, dpo, grpo, rloo)"
        fits = source.kind == RunKind.REWARD_MODEL if kind == RunKind.REWARD_MODEL else source.kind in POLICY_KINDS
        if not fits or source.status != RunStatus.SUCCEEDED:
            raise Conflict(f"base_model {base_model!r} is a {source.kind} run that {source.status}; a {kind} run can start "
                           f"from {wanted} that succeeded.")
        return base_model, source.is_demo
    if base_model:
        return base_model, False
    configured = training_setting("TRAINING_REWARD_BASE_MODEL" if kind == RunKind.REWARD_MODEL else "TRAINING_POLICY_BASE_MODEL", "")
    if configured:
        return configured, False
    return (DEMO_REWARD_BASE if kind == RunKind.REWARD_MODEL else DEMO_POLICY_BASE), True


def _dispatch(run: TrainingRun) -> None:
    """Queue the run's task once the transaction that made it queued commits."""
    task_id = run.celery_task_id
    transaction.on_commit(lambda: dispatch.run_enqueue(run_id=run.pk, task_id=task_id))


def _new_task_id(run: TrainingRun) -> None:
    # Known before the task is sent, so a cancel that arrives first can still revoke it.
    run.celery_task_id = str(uuid.uuid4())
    run.save(update_fields=["celery_task_id"])


@transaction.atomic
def pipeline_start(
    *,
    export: ExportSnapshot,
    pipeline: str,
    base_model: str = "",
    params: dict | None = None,
    created_by=None,
    trigger: str = TrainingPipeline.Trigger.MANUAL,
    trigger_key: str = "",
    strict_params: bool = True,
    base_models: dict[str, str] | None = None,
) -> list[TrainingRun]:
    """Create the runs of a pipeline (e.g. reward_model -> ppo) on one export snapshot and queue
    the first; each later run is queued when its parent succeeds. `params` holds flat
    hyper-parameters or per-kind sections ({"ppo": {"kl_coef": 0.1}}); bad ones raise a 400.
    `base_models` ({kind: base}) overrides `base_model` for the kinds it names."""
    try:
        stages = configs.pipeline_stages(pipeline)
        resolved = configs.params_for_stages(stages=stages, params=params, strict=strict_params)
    except configs.ParamsInvalid as exc:
        raise DomainError(str(exc)) from None
    if base_model and len(base_model) > 500:
        raise DomainError("base_model is longer than 500 characters.")
    pipe = TrainingPipeline.objects.create(export=export, spec=pipeline, trigger=trigger, trigger_key=trigger_key, created_by=created_by)
    runs: list[TrainingRun] = []
    parent = None
    for stage, kind in enumerate(stages):
        model, is_demo = base_model_resolve(kind=kind, base_model=(base_models or {}).get(kind) or base_model)
        run = TrainingRun.objects.create(
            pipeline=pipe, stage=stage, parent=parent, kind=kind, export=export, config=resolved[kind],
            base_model=model, is_demo=is_demo, note=DEMO_NOTE if is_demo else "", created_by=created_by,
        )
        audit_record(actor=created_by, action="training_run.created", obj=run, batch=export.batch_id,
                     data={"pipeline": pipe.pk, "spec": pipeline, "kind": kind, "stage": stage, "base_model": model,
                           "is_demo": is_demo, "trigger": trigger})
        runs.append(run)
        parent = run
    _new_task_id(runs[0])
    _dispatch(runs[0])
    logger.info("training.pipeline_started", extra={"pipeline": pipe.pk, "spec": pipeline, "export": export.pk})
    return runs


def training_start(*, export_id: int, pipeline: str, base_model: str = "", params: dict | None = None, created_by=None) -> list[TrainingRun]:
    """POST /api/training-runs/: a manual (re)train of an export snapshot."""
    export = ExportSnapshot.objects.filter(pk=export_id).first()
    if export is None:
        raise NotFound(f"Export {export_id} does not exist.")
    return pipeline_start(export=export, pipeline=pipeline, base_model=base_model, params=params, created_by=created_by)


# ---------------------------------------------------------------- cancelling and reaping


def _cancel_descendants(run: TrainingRun, *, reason: str, actor=None) -> None:
    now = timezone.now()
    for child in TrainingRun.objects.select_for_update().filter(parent=run, status=RunStatus.QUEUED):
        child.status, child.finished_at, child.error = RunStatus.CANCELLED, now, reason
        child.save(update_fields=["status", "finished_at", "error"])
        audit_record(actor=actor, action="training_run.cancelled", obj=child, batch=child.export.batch_id, data={"reason": reason})
        _cancel_descendants(child, reason=reason, actor=actor)


def _revoke(task_id: str) -> None:
    if not task_id:
        return
    try:
        from config.celery_app import app

        app.control.revoke(task_id)
    except Exception:  # a broker hiccup must not undo the cancel; the run stops on its next step anyway
        logger.warning("training.revoke_failed", exc_info=True)


@transaction.atomic
def run_cancel(*, run_id: int, actor) -> TrainingRun:
    """Cancel a queued or running run (and the runs waiting on it). A queued run is cancelled at
    once and its task revoked; a running one stops at its next training step."""
    run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"Training run {run_id} does not exist.")
    if run.is_finished:
        raise Conflict(f"Run {run.pk} already {run.status}; there is nothing to cancel.", extra={"status": run.status})
    run.cancel_requested = True
    fields = ["cancel_requested"]
    if run.status == RunStatus.QUEUED:
        run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
        fields += ["status", "finished_at"]
        task_id = run.celery_task_id
        transaction.on_commit(lambda: _revoke(task_id))
    run.save(update_fields=fields)
    audit_record(actor=actor, action="training_run.cancel_requested", obj=run, batch=run.export.batch_id, data={"status": run.status})
    _cancel_descendants(run, reason=f"Parent run {run.pk} was cancelled.", actor=actor)
    return run


def runs_reap_stale(*, older_than: timedelta | None = None) -> list[int]:
    """Fail (or, with TRAINING_REAP_POLICY=requeue and attempts left, requeue) running runs whose
    heartbeat stopped: their worker died or lost its host. Returns the ids handled."""
    older_than = older_than or stale_after()
    cutoff = timezone.now() - older_than
    policy = training_setting("TRAINING_REAP_POLICY", "fail")
    max_attempts = int(training_setting("TRAINING_MAX_ATTEMPTS", 2))
    handled = []
    stale_ids = list(TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True))
    for run_id in stale_ids:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff).first()
            if run is None:  # it reported in the meantime
                continue
            silent = f"no heartbeat from {run.host or 'its worker'} since {run.heartbeat_at.isoformat()}"
            if policy == "requeue" and run.attempts < max_attempts and not run.cancel_requested:
                run.status, run.progress, run.error = RunStatus.QUEUED, 0.0, f"Requeued: {silent}."
                run.save(update_fields=["status", "progress", "error"])
                _new_task_id(run)
                _dispatch(run)
                action = "training_run.requeued"
            else:
                run.status, run.finished_at = RunStatus.FAILED, timezone.now()
                run.error = f"The worker stopped reporting ({silent}); marked failed by the reaper."
                run.save(update_fields=["status", "finished_at", "error"])
                _cancel_descendants(run, reason=f"Parent run {run.pk} failed.")
                action = "training_run.reaped"
            audit_record(actor=None, action=action, obj=run, batch=run.export.batch_id, data={"reason": silent, "attempts": run.attempts})
            handled.append(run.pk)
    if handled:
        logger.warning("training.runs_reaped", extra={"runs": handled})
    return handled


# ---------------------------------------------------------------- a run's state in the worker


def run_claim(*, run_id: int, task_id: str) -> TrainingRun | None:
    """Mark the run running on this host, or return None when it is not ours to run: finished,
    cancelled, already running with a live heartbeat elsewhere, or waiting on its parent."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update(of=("self",)).select_related("export", "parent").filter(pk=run_id).first()
        if run is None:
            logger.warning("training.run_missing", extra={"run_id": run_id})
            return None
        if run.status == RunStatus.RUNNING:
            # A redelivered message (acks_late) after the first worker died: take over only once
            # the first one has gone quiet.
            if run.heartbeat_at and run.heartbeat_at > timezone.now() - stale_after():
                return None
        elif run.status != RunStatus.QUEUED:
            return None
        if run.cancel_requested:
            run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
            run.save(update_fields=["status", "finished_at"])
            return None
        if run.parent_id and run.parent.status != RunStatus.SUCCEEDED:
            return None
        now = timezone.now()
        run.status, run.started_at, run.heartbeat_at = RunStatus.RUNNING, now, now
        run.host = socket.gethostname()[:200]
        run.attempts += 1
        run.error = ""
        if task_id:
            run.celery_task_id = task_id
        run.save(update_fields=["status", "started_at", "heartbeat_at", "host", "attempts", "error", "celery_task_id"])
        audit_record(actor=None, action="training_run.started", obj=run, batch=run.export.batch_id,
                     data={"host": run.host, "attempt": run.attempts})
        return run


@transaction.atomic
def run_finish_succeeded(*, run_id: int, result, artifact_path: str, artifact_files: list[dict], log_tail: str) -> None:
    run = TrainingRun.objects.select_for_update().select_related("export").get(pk=run_id)
    cancelled = result.stopped == "cancelled" or run.cancel_requested
    run.status = RunStatus.CANCELLED if cancelled else RunStatus.SUCCEEDED
    run.final_metrics = {**result.final_metrics, "stopped": result.stopped, "notes": result.notes}
    run.artifact_path, run.artifact_files = artifact_path, artifact_files
    run.finished_at, run.heartbeat_at = timezone.now(), timezone.now()
    if not cancelled:
        run.progress = 1.0
    run.log_tail = log_tail[-20_000:]
    run.save(update_fields=["status", "final_metrics", "artifact_path", "artifact_files", "finished_at", "heartbeat_at", "progress", "log_tail"])
    audit_record(actor=None, action=f"training_run.{run.status}", obj=run, batch=run.export.batch_id,
                 data={"stopped": result.stopped, "artifact_path": artifact_path,
                       "metrics": {k: v for k, v in result.final_metrics.items() if isinstance(v, (int, float))}})
    logger.info("training.run_finished", extra={"run_id": run.pk, "status": run.status})
    if cancelled:
        _cancel_descendants(run, reason=f"Parent run {run.pk} was cancelled.")
        return
    for child in TrainingRun.objects.select_for_update().filter(parent=run, status=RunStatus.QUEUED):
        _new_task_id(child)
        _dispatch(child)


@transaction.atomic
def run_finish_failed(*, run_id: int, error: str, trace: str, log_tail: str) -> None:
    run = TrainingRun.objects.select_for_update().select_related("export").get(pk=run_id)
    run.status, run.finished_at = RunStatus.FAILED, timezone.now()
    run.error = error[:5000]
    run.log_tail = (log_tail + "\n" + trace)[-20_000:]
    run.save(update_fields=["status", "finished_at", "error", "log_tail"])
    audit_record(actor=None, action="training_run.failed", obj=run, batch=run.export.batch_id, data={"error": run.error[:500]})
    _cancel_descendants(run, reason=f"Parent run {run.pk} failed.")
