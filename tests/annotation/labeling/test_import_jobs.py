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
