"""The worker's runtime for one training run: claim it, fetch its data (and its parent's reward
model) through storage, train, upload the model, record the outcome. Only Celery's train_run task
calls run_execute. The state changes themselves are services (run_claim, run_finish_*); this
module owns the moving parts around the trainer: the log tail, the progress reporter and the
heartbeat thread.

Workers may live on other hosts: a run reads its export snapshot and its parent's model through
Django's storage API (artifacts.py), writes its model back through it (under training/<run id>/model/),
and reports progress, heartbeat and metrics through the database. Nothing here imports torch or TRL
at module level."""

from __future__ import annotations

import collections
import logging
import shutil
import tempfile
import threading
import time
import traceback
from pathlib import Path

from django.db import connection
from django.utils import timezone

from . import artifacts, launching, services
from .conf import heartbeat_seconds, training_setting
from .models import RunKind, RunStatus, TrainingMetric, TrainingRun

logger = logging.getLogger("training")


class LogTail(logging.Handler):
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


class RunReporter:
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


class Heartbeat(threading.Thread):
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


def _resolve_base(run: TrainingRun, work: Path) -> str:
    """The local path (or hub id) the runner loads. Demo bases are built here, never downloaded."""
    if run.base_model == services.DEMO_REWARD_BASE:
        from training.runners.tiny_models import minilm_path

        return minilm_path()
    if run.base_model == services.DEMO_POLICY_BASE:
        from training.runners.tiny_models import build_tiny_causal_lm

        return build_tiny_causal_lm(work / "base-policy", seed=run.config.get("seed", 0))
    source = services.run_base_source(run.base_model)
    if source is not None:  # the model an earlier run trained, through storage like any artifact
        artifacts.artifacts_download(source, work / "base-model")
        return str(work / "base-model")
    return run.base_model


def run_execute(*, run_id: int, task_id: str = "") -> TrainingRun | None:
    """Run one training run end to end in this worker: claim it, fetch its data (and its parent's
    reward model) through storage, train, upload the model, record the outcome, queue children."""
    run = services.run_claim(run_id=run_id, task_id=task_id)
    if run is None:
        return None
    from training.runners.common import RunContext

    work = Path(tempfile.mkdtemp(prefix=f"clinpref-train-{run.pk}-"))
    tail = LogTail()
    watched = [logging.getLogger(name) for name in ("training", "trl", "transformers", "accelerate")]
    for lg in watched:
        lg.addHandler(tail)
    heartbeat = Heartbeat(run.pk, heartbeat_seconds())
    heartbeat.start()
    reporter = RunReporter(run.pk)
    try:
        data_dir = work / "data"
        data_dir.mkdir()
        artifacts.snapshot_download(run.export, data_dir)
        reward_path = None
        if run.parent_id and run.parent.kind == RunKind.REWARD_MODEL:
            reward_path = work / "reward-model"
            artifacts.artifacts_download(run.parent, reward_path)
        ctx = RunContext(
            kind=run.kind, data_dir=data_dir, output_dir=work / "model", config=run.config,
            base_model=_resolve_base(run, work), reward_model_path=str(reward_path) if reward_path else None,
            report=reporter.report, should_stop=reporter.should_stop,
            model_card_extra={"run": run.pk, "export": run.export_id, "batch": run.export.batch_id,
                              "parent_run": run.parent_id, "note": run.note},
        )
        logger.info("training.run_started", extra={"run_id": run.pk, "kind": run.kind})
        result = launching.train(ctx, launcher=training_setting("TRAINING_LAUNCHER", "auto"), work=work, reporter=reporter, tail=tail)
        artifact_path, artifact_files = artifacts.artifacts_upload(run.pk, ctx.output_dir)
    except Exception as exc:
        logger.exception("training.run_failed", extra={"run_id": run.pk})
        services.run_finish_failed(run_id=run.pk, error="".join(traceback.format_exception_only(type(exc), exc)).strip(),
                       trace=traceback.format_exc(), log_tail=tail.text())
    else:
        services.run_finish_succeeded(run_id=run.pk, result=result, artifact_path=artifact_path, artifact_files=artifact_files, log_tail=tail.text())
    finally:
        heartbeat.stop.set()
        heartbeat.join(timeout=5)
        for lg in watched:
            lg.removeHandler(tail)
        shutil.rmtree(work, ignore_errors=True)
    return TrainingRun.objects.get(pk=run_id)
