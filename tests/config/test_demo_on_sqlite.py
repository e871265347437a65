"""The demo profile (`make run`: config.settings.local on SQLite) serves every admin and physician
page once a batch has an export and a training run, and a physician can lease and judge a pair. The rest of the suite runs on PostgreSQL, which
accepts queries SQLite refuses (DISTINCT ON once made the dashboard a 500 after the demo's first
close), so the pages are walked here on the demo's own database engine, in a process of its own."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.config.test_celery_modes import _settings_env

ROOT = Path(__file__).resolve().parents[2]

WALK = textwrap.dedent("""
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("load_demo", stdout=open("/dev/null", "w"))
    from annotation.exports.services import export_create, export_default_params
    from annotation.models import Batch
    from django.contrib.auth.models import User
    from training.services import training_start

    admin = User.objects.get(username="admin")
    batch = Batch.objects.get(name__contains="Cardiology")
    export = export_create(batch=batch, params=export_default_params(), created_by=admin)
    run = training_start(export_id=export.pk, pipeline="reward_model", created_by=admin)[0]
    physician = User.objects.filter(profile__role="physician", profile__specialty=batch.specialty).first()
    pages = {
        admin: ["/dashboard/", f"/dashboard/batches/{batch.pk}/", f"/dashboard/batches/{batch.pk}/agreement/",
                "/dashboard/agreement/", "/dashboard/exports/", "/dashboard/training/", f"/dashboard/training/{run.pk}/",
                "/dashboard/raters/", "/dashboard/audit/", "/dashboard/rounds/", f"/adjudicate/?batch={batch.pk}",
                "/api/batches/", f"/api/batches/{batch.pk}/", "/api/exports/", f"/api/exports/?batch={batch.pk}",
                "/api/training-runs/", f"/api/training-runs/{run.pk}/", f"/api/judgments/?batch={batch.pk}",
                "/api/agreement/trend/", "/api/rounds/"],
        physician: ["/", "/api/assignments/", "/api/judgments/", "/api/me/"],
    }
    failed = []
    for user, urls in pages.items():
        client = Client()
        client.force_login(user)
        for url in urls:
            status = client.get(url).status_code
            print(status, url)
            if status != 200:
                failed.append((url, status))
    # And the physician's hot path on the same engine: lease the next pair, judge it.
    client = Client()
    client.force_login(User.objects.get(username="dr_ito"))  # Internal Medicine: an open batch with work left
    lease = client.get("/api/next/")
    print(lease.status_code, "/api/next/")
    judged = client.post(f"/api/assignments/{lease.json()['assignment_id']}/judgment/", content_type="application/json",
                         data={"preference": "1>2", "idempotency_key": "sqlite-walk", "time_spent_ms": 1000,
                               "criteria": {"accuracy": "1>2"}})
    print(judged.status_code, "judgment", judged.content[:300])
    assert not failed, failed
    assert lease.status_code == 200 and judged.status_code == 201
""")


@pytest.mark.slow
def test_every_page_answers_on_the_demo_sqlite_database(tmp_path):
    env = _settings_env("config.settings.local", DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
                        CLINPREF_BROKER_DIR=str(tmp_path / "broker"), MEDIA_ROOT=str(tmp_path / "media"),
                        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DEBUG="0")
    out = subprocess.run([sys.executable, "-c", WALK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("200 /") == 25, out.stdout
