"""Imports above IMPORT_INLINE_MAX_LINES run as a background ImportJob: the API answers 202 with
a Location to follow, the job is all or nothing and reports bad lines by number."""

import json

import pytest
from django.test import override_settings

from annotation.models import Batch, ImportJob, Pair
from tests import factories


def body(n: int, *, bad_line: int | None = None) -> str:
    rows = [json.dumps({"prompt": f"Q{i}?", "response_a": f"Good {i}.", "response_b": f"Bad {i}."}) for i in range(n)]
    if bad_line:
        rows[bad_line - 1] = json.dumps({"prompt": "Q?", "response_a": "same", "response_b": "same"})
    return "\n".join(rows)


@pytest.fixture
def small_inline_limit(settings, tmp_path):
    settings.CLINPREF = {**settings.CLINPREF, "IMPORT_INLINE_MAX_LINES": 5}
    settings.MEDIA_ROOT = tmp_path


def test_a_big_import_answers_202_and_the_job_imports_everything(admin_client, db, small_inline_limit,
                                                                django_capture_on_commit_callbacks):
    batch = factories.BatchFactory(name="Big import")
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=body(20), content_type="application/x-ndjson")
    assert resp.status_code == 202, resp.content
    location = resp["Location"]
    assert location == f"/api/imports/{resp.json()['id']}/" and resp.json()["url"] == location
    status = admin_client.get(location).json()
    assert status["status"] == "done" and status["pairs_created"] == 20 and status["lines_read"] == 20
    assert Pair.objects.filter(batch=batch).count() == 20 == Batch.objects.get(pk=batch.pk).pairs_count
    page = admin_client.get(f"/dashboard/batches/{batch.pk}/")
    assert page.status_code in (200, 302, 403)  # the dashboard uses sessions; the API client has a token


def test_a_big_import_with_a_bad_line_imports_nothing_and_names_the_line(admin_client, db, small_inline_limit,
                                                                         django_capture_on_commit_callbacks):
    batch = factories.BatchFactory(name="Bad import")
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=body(12, bad_line=9), content_type="application/x-ndjson")
    assert resp.status_code == 202
    status = admin_client.get(resp["Location"]).json()
    assert status["status"] == "failed" and status["pairs_created"] == 0
    assert status["errors"] == [{"line": 9, "message": "response_a and response_b are identical"}]
    assert not Pair.objects.filter(batch=batch).exists()


def test_a_small_import_stays_inline(admin_client, db, small_inline_limit):
    batch = factories.BatchFactory(name="Small import")
    resp = admin_client.post(f"/api/batches/{batch.pk}/pairs/", data=body(5), content_type="application/x-ndjson")
    assert resp.status_code == 201 and resp.json() == {"created": 5}
    assert not ImportJob.objects.exists()


def test_the_dashboard_upload_of_a_big_file_queues_a_job_shown_on_the_batch_page(client, db, small_inline_limit,
                                                                               django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin = factories.admin("boss")
    client.force_login(admin)
    batch = factories.BatchFactory(name="Uploaded")
    upload = SimpleUploadedFile("pairs.jsonl", body(8).encode(), content_type="application/x-ndjson")
    with django_capture_on_commit_callbacks(execute=True):
        resp = client.post(f"/dashboard/batches/{batch.pk}/upload/", {"file": upload})
    assert resp.status_code == 302
    page = client.get(f"/dashboard/batches/{batch.pk}/").content.decode()
    assert "Background imports" in page and "Done" in page
    assert Batch.objects.get(pk=batch.pk).pairs_count == 8


def test_import_status_is_admin_only(physician_client, db):
    assert physician_client.get("/api/imports/1/").status_code == 403


def _dead_job(batch, *, attempts: int, minutes_silent: int = 20) -> ImportJob:
    """A job left 'running' by a worker that died: its heartbeat stopped minutes_silent ago."""
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    name = default_storage.save(f"imports/batch-{batch.pk}/dead.jsonl", ContentFile(body(7).encode()))
    silent_since = timezone.now() - timedelta(minutes=minutes_silent)
    return ImportJob.objects.create(batch=batch, source=name, status="running", started_at=silent_since,
                                    heartbeat_at=silent_since, attempts=attempts, lines_read=3)


def test_an_import_whose_worker_died_runs_again_from_its_stored_file(db, small_inline_limit, django_capture_on_commit_callbacks):
    from annotation.labeling.importing import import_jobs_reap_stale
    from annotation.models import AuditEvent

    batch = factories.BatchFactory(name="Worker died")
    dead, alive = _dead_job(batch, attempts=1), _dead_job(batch, attempts=1, minutes_silent=2)
    with django_capture_on_commit_callbacks(execute=True):  # the requeued task runs (eager) after commit
        assert import_jobs_reap_stale() == [dead.pk]
    dead.refresh_from_db()
    assert dead.status == "done" and dead.pairs_created == 7 and dead.attempts == 2
    assert ImportJob.objects.get(pk=alive.pk).status == "running"  # still reporting: left alone
    assert Batch.objects.get(pk=batch.pk).pairs_count == 7
    assert AuditEvent.objects.filter(action="batch.import_requeued", data__import_job=dead.pk).exists()


def test_an_import_that_died_on_its_last_attempt_fails_with_a_message(db, small_inline_limit):
    from annotation.labeling.importing import import_jobs_reap_stale

    batch = factories.BatchFactory(name="Died twice")
    job = _dead_job(batch, attempts=2)
    assert import_jobs_reap_stale() == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert "Nothing was imported (all or nothing)" in job.detail and "after 3 lines" in job.detail
    assert not Pair.objects.filter(batch=batch).exists()


def test_a_late_result_of_a_reaped_attempt_does_not_overwrite_the_job(db, small_inline_limit):
    from annotation.labeling.importing import import_job_run

    batch = factories.BatchFactory(name="Late worker")
    job = ImportJob.objects.create(batch=batch, source="imports/missing.jsonl")
    # The reaper gave the job to a new attempt while this one was still (slowly) running.
    real_filter = ImportJob.objects.filter

    def claimed_by_another_attempt(*args, **kwargs):
        qs = real_filter(*args, **kwargs)
        ImportJob.objects.all().update(attempts=5)
        return qs

    import unittest.mock as mock
    with mock.patch.object(ImportJob.objects, "filter", side_effect=claimed_by_another_attempt):
        with pytest.raises(Exception):
            import_job_run(job_id=job.pk)  # the stored file is missing: the attempt fails
    job.refresh_from_db()
    assert job.status == "running" and job.attempts == 5  # the failure of a stale attempt was dropped
