"""Where tasks run in each settings profile: production refuses to start without a real broker,
the local default queues on an embedded broker that a real worker consumes, and closing a batch
answers before any of its pipeline runs. Only the test settings run tasks eagerly."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from annotation.models import BatchEvent, ExportSnapshot
from tests import factories
from tests.conftest import client_for
from tests.training.conftest import gate_open_batch
from training.models import TrainingPipeline, TrainingRun

ROOT = Path(__file__).resolve().parents[2]


def _settings_env(module: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return {**env, "DJANGO_SETTINGS_MODULE": module, "SECRET_KEY": "s" * 30 + "-k3y-" + "q" * 30, **extra}


@pytest.mark.parametrize("broker", [None, "memory://", "filesystem://"])
def test_production_refuses_to_start_without_a_real_broker(broker):
    env = _settings_env("config.settings.production", **({"CELERY_BROKER_URL": broker} if broker else {}))
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "Set CELERY_BROKER_URL (or REDIS_URL)" in out.stderr


def test_production_refuses_eager_tasks():
    env = _settings_env("config.settings.production", REDIS_URL="redis://127.0.0.1:6379/0", CELERY_TASK_ALWAYS_EAGER="true")
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "CELERY_TASK_ALWAYS_EAGER" in out.stderr


def test_local_defaults_to_the_embedded_broker_and_never_eager(tmp_path):
    code = ("from django.conf import settings as s; import django; django.setup();"
            "from config.celery_app import app;"
            "print(app.conf.broker_url, app.conf.task_always_eager, s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])")
    env = _settings_env("config.settings.local", CLINPREF_BROKER_DIR=str(tmp_path / "broker"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    url, eager, folder = out.stdout.split()
    assert url == "filesystem://" and eager == "False" and Path(folder).is_dir()
    # A base profile without a broker never falls back to eager either.
    from config.settings import base

    assert base.CELERY_TASK_ALWAYS_EAGER is False


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def embedded_broker(tmp_path):
    """The Celery app of this process switched to the local profile's embedded broker: no eager
    mode, every task a message file under tmp_path that only a worker can run."""
    from config.celery_app import app

    folder = tmp_path / "broker"
    messages = folder / "messages"
    for name in ("messages", "processed", "control"):
        (folder / name).mkdir(parents=True)
    keys = ("task_always_eager", "broker_url", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}
    app.conf.update(task_always_eager=False, broker_url="filesystem://", broker_transport_options={
        "data_folder_in": str(messages), "data_folder_out": str(messages), "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"), "polling_interval": 0.2})
    app._after_fork()  # drop pooled connections to the old broker
    yield folder
    app.conf.update(saved)
    app._after_fork()


def _queued(folder: Path, queue: str) -> list[str]:
    return [name for name in os.listdir(folder / "messages") if name.endswith(f".{queue}.msg")]


def _close_through_the_api(batch) -> tuple[dict, float]:
    started = time.perf_counter()
    response = client_for(factories.admin("closer")).post(f"/api/batches/{batch.pk}/close/", {}, format="json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    return response.json(), elapsed


@pytest.mark.django_db
def test_closing_through_the_api_queues_the_pipeline_and_answers_before_it_runs(embedded_broker, media,
                                                                                 django_capture_on_commit_callbacks):
    batch = gate_open_batch(n_pairs=8)
    with django_capture_on_commit_callbacks(execute=True):
        body, elapsed = _close_through_the_api(batch)
    assert body["state"] == "closed" and body["close_outcome"]["state"] == "queued"
    # Nothing of the pipeline ran in the request: no agreement gate, no export, no run.
    assert not ExportSnapshot.objects.exists() and not TrainingPipeline.objects.exists()
    event = BatchEvent.objects.get(batch=batch)
    assert event.handled_at is None and event.sent_at is not None
    assert len(_queued(embedded_broker, "default")) == 1
    assert elapsed < 5, f"closing took {elapsed:.1f}s"
    detail = client_for(factories.admin("reader")).get(f"/api/batches/{batch.pk}/").json()
    assert detail["close_outcome"]["state"] == "queued"


@pytest.mark.slow
@pytest.mark.postgres
def test_a_real_worker_on_the_embedded_broker_runs_the_queued_close(transactional_db, embedded_broker, media):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database it can share with the test (PostgreSQL)")
    batch = gate_open_batch(n_pairs=8, pipeline="reward_model")
    body, _ = _close_through_the_api(batch)  # transactional_db: on_commit runs, the message is written
    assert body["close_outcome"]["state"] == "queued" and len(_queued(embedded_broker, "default")) == 1

    db = connection.settings_dict
    env = _settings_env(
        "config.settings.local",
        DATABASE_URL=f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        CLINPREF_BROKER_DIR=str(embedded_broker), MEDIA_ROOT=str(media), CONN_MAX_AGE="0", HF_HUB_OFFLINE="1",
    )
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    log_path = embedded_broker / "worker.log"
    with open(log_path, "w") as log:
        # Only the default queue: the training run it queues stays on the gpu queue, unrun, so the
        # test checks the hand-over without training a model.
        worker = subprocess.Popen([celery, "-A", "config", "worker", "-Q", "default", "--pool", "solo",
                                   "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
                                  cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        event = BatchEvent.objects.get(batch=batch)
        while time.monotonic() < deadline and event.handled_at is None:
            assert worker.poll() is None, "the worker exited: " + log_path.read_text()[-3000:]
            time.sleep(0.5)
            event.refresh_from_db()
    finally:
        worker.terminate()
        worker.wait(20)
    assert event.handled_at is not None and event.error == "", log_path.read_text()[-3000:]
    assert not _queued(embedded_broker, "default"), "the worker consumed the message"
    pipeline = TrainingPipeline.objects.get(trigger_key=f"batch_closed:{batch.pk}")
    assert ExportSnapshot.objects.filter(batch=batch).count() == 1
    run = TrainingRun.objects.get(pipeline=pipeline)
    assert run.status == "queued" and len(_queued(embedded_broker, "gpu")) == 1
    assert "annotation.tasks.dispatch_batch_event" in log_path.read_text()
