"""PostgreSQL-only: exactly-once launch when closes race on threads, and a real Celery worker
process on the real Redis broker training a run end to end."""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from annotation.errors import InvalidTransition
from annotation.models import BatchEvent, ExportSnapshot
from annotation.labeling.services import batch_close
from tests import factories
from tests.training.conftest import FAST_PARAMS, gate_open_batch
from training import batch_closed, services
from training.models import RunStatus, TrainingPipeline, TrainingRun

ROOT = Path(__file__).resolve().parents[2]


def _skip_or_fail(reason: str):
    # CI promises these run against the real services: there a missing service is a failure.
    if os.environ.get("CI"):
        pytest.fail(f"{reason} - CI must run this test")
    pytest.skip(reason)


def _needs_postgres():
    if connection.vendor != "postgresql":
        _skip_or_fail("needs PostgreSQL (row locks; CI runs the suite on it)")


def _run_threads(n, target):
    barrier = threading.Barrier(n)
    errors, results = [], []

    def worker(i):
        from django.db import connection as conn

        try:
            barrier.wait()
            results.append(target(i))
        except Exception as exc:  # collected and asserted on below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


@pytest.mark.slow
@pytest.mark.postgres
def test_concurrent_closes_launch_training_exactly_once(transactional_db, media, settings, monkeypatch):
    _needs_postgres()
    settings.CLINPREF = {**settings.CLINPREF, "TRAINING_AUTO_PARAMS": FAST_PARAMS}
    dispatched = []
    monkeypatch.setattr(services, "_dispatch", lambda run: dispatched.append(run.pk))  # no training here
    admin_a, admin_b = factories.admin("lead_a"), factories.admin("lead_b")
    batch = gate_open_batch(n_pairs=6)

    # Two admins press "close" at the same moment; the batch_closed event then fans out.
    results, errors = _run_threads(2, lambda i: batch_close(batch_id=batch.pk, actor=(admin_a, admin_b)[i]))
    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], InvalidTransition)
    # The event is redelivered and the handler retried by several workers at once.
    results, errors = _run_threads(4, lambda i: batch_closed.batch_closed_handle(batch_id=batch.pk))
    assert not errors

    assert BatchEvent.objects.filter(batch=batch).count() == 1
    assert TrainingPipeline.objects.filter(trigger_key=f"batch_closed:{batch.pk}").count() == 1
    assert ExportSnapshot.objects.filter(batch=batch).count() == 1
    assert TrainingRun.objects.count() == 2 and len(dispatched) == 1


def _redis_url() -> str | None:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        client.ping()
        client.flushdb()  # a dedicated db number: leftovers of an earlier run must not be consumed
        return url
    except Exception:
        return None


@pytest.mark.slow
@pytest.mark.postgres
def test_real_celery_worker_trains_a_pipeline_over_redis(transactional_db, media, monkeypatch):
    _needs_postgres()
    redis_url = _redis_url()
    if redis_url is None:
        _skip_or_fail("no Redis broker reachable")
    from celery import Celery

    # The test process sends through the real broker; the worker is a separate process on the
    # same test database (transactional_db: the rows are committed, so it sees them).
    sender = Celery("clinpref-test-sender", broker=redis_url)
    monkeypatch.setattr(services, "_dispatch", lambda run: sender.send_task(
        "training.tasks.train_run", args=[run.pk], task_id=run.celery_task_id, queue="gpu"))
    batch = gate_open_batch(state="closed", n_pairs=8)
    from annotation.exports.services import export_create, export_default_params

    export = export_create(batch=batch, params=export_default_params(), created_by=None)
    rm, ppo = services.pipeline_start(export=export, pipeline="reward_model>ppo", params=FAST_PARAMS, created_by=None, strict_params=False)

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "REDIS_URL": "",
        "MEDIA_ROOT": str(media),
        "HF_HUB_OFFLINE": "1",
        "TRL_EXPERIMENTAL_SILENCE": "1",
        "CONN_MAX_AGE": "0",
    }
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    log = open(media.parent / "worker.log", "w+")
    worker = subprocess.Popen(
        [celery, "-A", "config", "worker", "-Q", "default,gpu", "--pool", "solo", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            ppo.refresh_from_db()
            if ppo.is_finished:
                break
            if "Traceback" in open(log.name).read():
                break  # the task crashed: fail now with its log instead of waiting out the deadline
            assert worker.poll() is None, "the worker exited early"
            time.sleep(1)
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.seek(0)
        worker_log = log.read()
        log.close()
    rm.refresh_from_db()
    assert rm.status == RunStatus.SUCCEEDED, rm.error + worker_log[-3000:]
    assert ppo.status == RunStatus.SUCCEEDED, ppo.error + worker_log[-3000:]
    # The worker, not this process, ran both: the child was queued by the worker through Redis.
    assert rm.celery_task_id and rm.host and ppo.parent_id == rm.pk
    assert "training.tasks.train_run" in worker_log
