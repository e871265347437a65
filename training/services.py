"""Writes of the training domain: start pipelines, execute one run in a worker, cancel, reap runs
whose worker died, and launch training when a batch closes. Keyword-only, audited.

Workers may live on other hosts: a run reads its export snapshot and its parent's model through
Django's storage API, writes its model back through it (under training/<run id>/model/), and
reports progress, heartbeat and metrics through the database. Nothing here imports torch or TRL at
module level: the web process imports this module too."""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, NotFound
from annotation.models import AuditEvent, Batch, ExportSnapshot

from . import configs
from .models import RunKind, RunStatus, TrainingMetric, TrainingPipeline, TrainingRun

logger = logging.getLogger("training")

DEMO_REWARD_BASE = "demo:minilm-l6"
DEMO_POLICY_BASE = "demo:tiny-llama"
DEMO_NOTE = (
    "DEMO RUN - not a clinical model. No base model was configured, so the reward model starts from the small "
    "general-purpose MiniLM-L6 sentence encoder shipped with the app and any policy from a tiny, randomly "
    "initialised 2-layer model built on the worker. Its outputs mean nothing clinically."
)
RUNNER_MODULES = {kind: f"training.runners.{'reward' if kind == RunKind.REWARD_MODEL else kind}" for kind in RunKind.values}
# The export files a run reads: the TRL preference splits (both flavours) and the manifest.
SNAPSHOT_FILES = ("train.jsonl", "test.jsonl", "train.conversational.jsonl", "test.conversational.jsonl", "manifest.json")


def _setting(name: str, default):
    """CLINPREF[name] from settings, else the CLINPREF_<name> environment variable (JSON for
    dicts such as TRAINING_AUTO_PARAMS), else default."""
    if name in getattr(settings, "CLINPREF", {}):
        return settings.CLINPREF[name]
    raw = os.environ.get(f"CLINPREF_{name}")
    if raw is None:
        return default
    return json.loads(raw) if isinstance(default, dict) or (default is None and raw.startswith("{")) else raw


def heartbeat_seconds() -> float:
    return float(_setting("TRAINING_HEARTBEAT_SECONDS", 30))


def stale_after() -> timedelta:
    """A running run whose heartbeat is older than this has lost its worker."""
    return timedelta(seconds=float(_setting("TRAINING_STALE_SECONDS", 10 * 60)))


# ---------------------------------------------------------------- starting


def base_model_resolve(*, kind: str, base_model: str) -> tuple[str, bool]:
    """(base model, is_demo). Empty means: the configured default for this kind, else the demo
    models (MiniLM reward model, tiny local policy), marked as such."""
    if base_model:
        return base_model, False
    configured = _setting("TRAINING_REWARD_BASE_MODEL" if kind == RunKind.REWARD_MODEL else "TRAINING_POLICY_BASE_MODEL", "")
    if configured:
        return configured, False
    return (DEMO_REWARD_BASE if kind == RunKind.REWARD_MODEL else DEMO_POLICY_BASE), True


def _dispatch(run: TrainingRun) -> None:
    """Queue the run's task once the transaction that made it queued commits."""
    from .tasks import train_run

    task_id = run.celery_task_id
    transaction.on_commit(lambda: train_run.apply_async(args=[run.pk], task_id=task_id, queue="gpu"))


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
) -> list[TrainingRun]:
    """Create the runs of a pipeline (e.g. reward_model -> ppo) on one export snapshot and queue
    the first; each later run is queued when its parent succeeds. `params` holds flat
    hyper-parameters or per-kind sections ({"ppo": {"kl_coef": 0.1}}); bad ones raise a 400."""
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
        model, is_demo = base_model_resolve(kind=kind, base_model=base_model)
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


def batch_closed_handle(*, batch_id: int) -> TrainingPipeline | None:
    """The batch_closed subscriber: check the agreement gate, export with the default params and
    start the batch's training pipeline - exactly once per batch, even when two closes or a retried
    event race. The batch row lock serialises them; the pipeline's unique trigger_key backs it up."""
    from annotation.agreement_reports import batch_agreement_gate
    from annotation.export_services import export_create, export_default_params

    key = f"batch_closed:{batch_id}"
    try:
        with transaction.atomic():
            batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
            if batch is None:
                raise NotFound(f"Batch {batch_id} does not exist.")
            if TrainingPipeline.objects.filter(trigger_key=key).exists():
                logger.info("training.batch_closed_duplicate", extra={"batch_id": batch_id})
                return None
            if AuditEvent.objects.filter(action="training.gate_blocked", batch_id=batch_id).exists():
                return None
            passed, reasons = batch_agreement_gate(batch=batch)
            if not passed and not batch.gate_override_reason.strip():
                audit_record(actor=None, action="training.gate_blocked", obj=batch, batch=batch,
                             data={"reasons": reasons, "note": "Training was not started: agreement is below the batch's "
                                   "gate and no override reason was given."})
                logger.info("training.gate_blocked", extra={"batch_id": batch_id})
                return None
            if not passed:
                audit_record(actor=batch.closed_by, action="training.gate_overridden", obj=batch, batch=batch,
                             data={"reasons": reasons, "override_reason": batch.gate_override_reason})
            export = export_create(batch=batch, params=export_default_params(), created_by=batch.closed_by)
            # Hyper-parameters for automatic launches come from settings (CLINPREF["TRAINING_AUTO_PARAMS"]),
            # so operators tune them per deployment without touching batches.
            runs = pipeline_start(export=export, pipeline=batch.training_pipeline, params=_setting("TRAINING_AUTO_PARAMS", None),
                                  base_model=_setting("TRAINING_AUTO_BASE_MODEL", ""), created_by=batch.closed_by, strict_params=False,
                                  trigger=TrainingPipeline.Trigger.BATCH_CLOSED, trigger_key=key)
            return runs[0].pipeline
    except IntegrityError:
        # Another process won the unique trigger_key between our check and insert.
        logger.info("training.batch_closed_duplicate", extra={"batch_id": batch_id})
        return None


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
    policy = _setting("TRAINING_REAP_POLICY", "fail")
    max_attempts = int(_setting("TRAINING_MAX_ATTEMPTS", 2))
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


# ---------------------------------------------------------------- executing (in a worker)


class _LogTail(logging.Handler):
    """Keeps the last lines the training libraries log, for the run's log_tail."""

    def __init__(self, lines: int = 200):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            pass

    def text(self) -> str:
        return "\n".join(self.lines)


class _Reporter:
    """The runner's report()/should_stop() callables, bound to one run row. Metric points are
    appended as rows; progress and heartbeat are one UPDATE; the cancel flag is read at most every
    `poll` seconds so a fast CPU loop does not hammer the database."""

    def __init__(self, run_id: int, *, poll: float = 2.0):
        self.run_id = run_id
        self.poll = poll
        self._checked_at = 0.0
        self._cancelled = False

    def report(self, step: int, total: int, metrics: dict) -> None:
        now = timezone.now()
        if metrics:
            TrainingMetric.objects.create(run_id=self.run_id, step=step, values=metrics)
        progress = min(step / total, 1.0) if total else 0.0
        TrainingRun.objects.filter(pk=self.run_id).update(current_step=step, total_steps=max(total, 0), progress=progress, heartbeat_at=now)

    def should_stop(self) -> bool:
        if not self._cancelled and time.monotonic() - self._checked_at >= self.poll:
            self._checked_at = time.monotonic()
            self._cancelled = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
        return self._cancelled


class _Heartbeat(threading.Thread):
    """Beats while the run works outside the training loop (downloads, model loading, a long step)."""

    def __init__(self, run_id: int, every: float):
        super().__init__(daemon=True, name=f"heartbeat-{run_id}")
        self.run_id, self.every = run_id, every
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(self.every):
                TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(heartbeat_at=timezone.now())
        except Exception:
            logger.warning("training.heartbeat_failed", exc_info=True)
        finally:
            connection.close()


def _claim(run_id: int, task_id: str) -> TrainingRun | None:
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


def _download_snapshot(export: ExportSnapshot, data_dir: Path) -> None:
    from annotation.export_services import export_open_file

    names = {entry["name"] for entry in export.files}
    for name in SNAPSHOT_FILES:
        if name in names:
            with export_open_file(snapshot=export, name=name) as src, open(data_dir / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _download_artifacts(run: TrainingRun, target: Path) -> None:
    for entry in run.artifact_files:
        local = target / entry["name"]
        local.parent.mkdir(parents=True, exist_ok=True)
        with default_storage.open(entry["path"], "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _upload_artifacts(run_id: int, source: Path) -> tuple[str, list[dict]]:
    prefix = f"training/{run_id}/model"
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source).as_posix()
        name = f"{prefix}/{rel}"
        if default_storage.exists(name):  # a retried attempt replaces its own earlier upload
            default_storage.delete(name)
        with open(path, "rb") as fh:
            saved = default_storage.save(name, File(fh, name=path.name))
        files.append({"name": rel, "path": saved, "bytes": path.stat().st_size})
    return prefix + "/", files


def _resolve_base(run: TrainingRun, work: Path) -> str:
    """The local path (or hub id) the runner loads. Demo bases are built here, never downloaded."""
    if run.base_model == DEMO_REWARD_BASE:
        from training.runners.tiny_models import minilm_path

        return minilm_path()
    if run.base_model == DEMO_POLICY_BASE:
        from training.runners.tiny_models import build_tiny_causal_lm

        return build_tiny_causal_lm(work / "base-policy", seed=run.config.get("seed", 0))
    return run.base_model


def run_execute(*, run_id: int, task_id: str = "") -> TrainingRun | None:
    """Run one training run end to end in this worker: claim it, fetch its data (and its parent's
    reward model) through storage, train, upload the model, record the outcome, queue children."""
    run = _claim(run_id, task_id)
    if run is None:
        return None
    from training.runners.common import RunContext

    work = Path(tempfile.mkdtemp(prefix=f"clinpref-train-{run.pk}-"))
    tail = _LogTail()
    watched = [logging.getLogger(name) for name in ("training", "trl", "transformers", "accelerate")]
    for lg in watched:
        lg.addHandler(tail)
    heartbeat = _Heartbeat(run.pk, heartbeat_seconds())
    heartbeat.start()
    reporter = _Reporter(run.pk)
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        _download_snapshot(run.export, data_dir)
        reward_path = None
        if run.parent_id and run.parent.kind == RunKind.REWARD_MODEL:
            reward_path = work / "reward-model"
            _download_artifacts(run.parent, reward_path)
        ctx = RunContext(
            kind=run.kind, data_dir=data_dir, output_dir=work / "model", config=run.config,
            base_model=_resolve_base(run, work), reward_model_path=str(reward_path) if reward_path else None,
            report=reporter.report, should_stop=reporter.should_stop,
            model_card_extra={"run": run.pk, "export": run.export_id, "batch": run.export.batch_id,
                              "parent_run": run.parent_id, "note": run.note},
        )
        logger.info("training.run_started", extra={"run_id": run.pk, "kind": run.kind})
        result = _train(ctx, work=work, reporter=reporter, tail=tail)
        artifact_path, artifact_files = _upload_artifacts(run.pk, ctx.output_dir)
    except Exception as exc:
        logger.exception("training.run_failed", extra={"run_id": run.pk})
        _finish_failed(run.pk, error="".join(traceback.format_exception_only(type(exc), exc)).strip(),
                       trace=traceback.format_exc(), log_tail=tail.text())
    else:
        _finish_ok(run.pk, result=result, artifact_path=artifact_path, artifact_files=artifact_files, log_tail=tail.text())
    finally:
        heartbeat.stop.set()
        heartbeat.join(timeout=5)
        for lg in watched:
            lg.removeHandler(tail)
        shutil.rmtree(work, ignore_errors=True)
    return TrainingRun.objects.get(pk=run_id)


def _num_processes(config: dict) -> int:
    """The run's `num_processes`: a number, or "auto" = every GPU of this host (1 without GPUs)."""
    wanted = config.get("num_processes", "auto")
    if wanted != "auto":
        return int(wanted)
    import torch  # here, not at module level: the web process imports this module too

    return max(torch.cuda.device_count(), 1)


def _train(ctx, *, work: Path, reporter: _Reporter, tail: _LogTail):
    """Run the trainer in this process, or under `accelerate launch` when the run spans several
    GPUs (TRAINING_LAUNCHER="accelerate" forces the launcher even for one process)."""
    processes = _num_processes(ctx.config)
    if processes == 1 and _setting("TRAINING_LAUNCHER", "auto") != "accelerate":
        return importlib.import_module(RUNNER_MODULES[ctx.kind]).run(ctx)
    return _train_launched(ctx, processes=processes, work=work, reporter=reporter, tail=tail)


def _accelerate_command(*, processes: int, spec: Path) -> list[str]:
    import torch

    cli = Path(sys.executable).with_name("accelerate")
    cmd = [str(cli), "launch"] if cli.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    # Explicit values, so a stray ~/.cache/huggingface/accelerate config cannot change the topology;
    # precision is the run's own bf16 param (TRL's config sets it inside the trainer).
    cmd += ["--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--quiet"]
    if processes > 1:
        cmd.append("--multi_gpu")
    elif not torch.cuda.is_available():
        cmd += ["--cpu", "--num_cpu_threads_per_process", str(torch.get_num_threads())]  # as many threads as in-process
    return cmd + ["-m", "training.runners.launch", "--spec", str(spec)]


def _forward_progress(path: Path, offset: int, report) -> int:
    """Hand the complete JSON lines written since `offset` to report(); returns the new offset."""
    if not path.exists():
        return offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
    for line in chunk[:complete].splitlines():
        if line.strip():
            point = json.loads(line)
            report(point["step"], point["total"], point["metrics"])
    return offset + complete


def _file_tail(path: Path, lines: int, max_bytes: int = 256_000) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - max_bytes, 0))
        return fh.read().decode("utf-8", "replace").splitlines()[-lines:]


def _train_launched(ctx, *, processes: int, work: Path, reporter: _Reporter, tail: _LogTail):
    """Train under `accelerate launch` (training/runners/launch.py) and bridge its callbacks: its
    progress lines go to the same reporter as an in-process run, a cancel becomes its stop file,
    its RunResult comes back as JSON. A non-zero exit raises with the child's last lines."""
    from training.runners.common import RunResult

    io = work / "launch"
    io.mkdir()
    progress, stop, result_file, output = io / "progress.jsonl", io / "stop", io / "result.json", io / "output.log"
    spec = io / "spec.json"
    spec.write_text(json.dumps({
        "kind": ctx.kind, "runner": RUNNER_MODULES[ctx.kind], "data_dir": str(ctx.data_dir), "output_dir": str(ctx.output_dir),
        "config": ctx.config, "base_model": ctx.base_model, "reward_model_path": ctx.reward_model_path,
        "model_card_extra": ctx.model_card_extra, "progress_file": str(progress), "stop_file": str(stop), "result_file": str(result_file),
    }, default=str), encoding="utf-8")
    root = str(settings.BASE_DIR)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    command = _accelerate_command(processes=processes, spec=spec)
    logger.info("training.launch", extra={"command": " ".join(command)})
    with open(output, "wb") as out:
        # Its own session, so an interrupted task can take down every trainer process it started.
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env, start_new_session=True)
    offset = 0
    try:
        while True:
            try:
                proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            offset = _forward_progress(progress, offset, reporter.report)
            if proc.returncode is not None:
                break
            if not stop.exists() and reporter.should_stop():
                stop.touch()
    finally:
        if proc.poll() is None:  # soft time limit or worker shutdown while training
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        last = _file_tail(output, 200)
        tail.lines.extend(last)
    if proc.returncode != 0 or not result_file.exists():
        said = next((line.strip() for line in reversed(last) if line.strip()), "no output")
        raise RuntimeError(f"accelerate launch ({processes} process(es)) exited with code {proc.returncode}: {said}\n"
                           "Its last lines:\n" + "\n".join(last[-15:]))
    return RunResult(**json.loads(result_file.read_text(encoding="utf-8")))


@transaction.atomic
def _finish_ok(run_id: int, *, result, artifact_path: str, artifact_files: list[dict], log_tail: str) -> None:
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
def _finish_failed(run_id: int, *, error: str, trace: str, log_tail: str) -> None:
    run = TrainingRun.objects.select_for_update().select_related("export").get(pk=run_id)
    run.status, run.finished_at = RunStatus.FAILED, timezone.now()
    run.error = error[:5000]
    run.log_tail = (log_tail + "\n" + trace)[-20_000:]
    run.save(update_fields=["status", "finished_at", "error", "log_tail"])
    audit_record(actor=None, action="training_run.failed", obj=run, batch=run.export.batch_id, data={"error": run.error[:500]})
    _cancel_descendants(run, reason=f"Parent run {run.pk} failed.")
