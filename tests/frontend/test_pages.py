"""The browser pages through Django's test client: who may see what, and that each page
calls through to the domain (import errors by line, close confirmation, rater switch)."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils.html import escape

from annotation.models import AuditEvent, BatchState, Judgment, Profile
from frontend.markdown import markdown_to_safe_html
from tests import factories

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def open_batch(physician):
    batch = factories.BatchFactory(name="Chest pain", specialty=physician.profile.specialty, state=BatchState.OPEN,
                                   calibration_rate=0.0)
    factories.make_pair(batch, "Chest pain at rest?", "Call **emergency** services. <script>alert(1)</script>",
                        "Rest and see.\n\n![x](http://evil.example/x.png)")
    return batch


ADMIN_PAGES = ["/dashboard/", "/dashboard/raters/", "/dashboard/audit/", "/dashboard/exports/", "/dashboard/training/"]


@pytest.mark.parametrize("url", ["/", "/label/1/", "/workspace/1/next.json", *ADMIN_PAGES])
def test_every_page_needs_a_login(url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_physician_gets_403_on_admin_pages(physician, url):
    assert logged_in(physician).get(url).status_code == 403


def test_physician_cannot_post_admin_actions(physician, open_batch):
    client = logged_in(physician)
    assert client.post(f"/dashboard/batches/{open_batch.pk}/close/", {"confirm": "on", "force": "on"}).status_code == 403
    open_batch.refresh_from_db()
    assert open_batch.state == BatchState.OPEN


def test_admin_cannot_use_the_labeling_workspace(admin_user, open_batch):
    client = logged_in(admin_user)
    assert client.get("/").status_code == 302  # sent to the dashboard
    assert client.get(f"/label/{open_batch.pk}/").status_code == 403


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages_render(admin_user, open_batch, url):
    assert logged_in(admin_user).get(url).status_code == 200


def test_queue_lists_open_batch_with_my_counts(physician, open_batch):
    body = logged_in(physician).get("/").content.decode()
    assert "Chest pain" in body and "Left for me" in body


def test_next_json_renders_sanitised_markdown_in_display_order(physician, open_batch):
    data = logged_in(physician).get(f"/workspace/{open_batch.pk}/next.json").json()
    a = data["assignment"]
    texts = [r["text"] for r in a["responses"]]
    assert sorted(texts) == sorted([open_batch.pairs.get().completion_a.text, open_batch.pairs.get().completion_b.text])
    html = " ".join(r["html"] for r in a["responses"])
    assert "<strong>emergency</strong>" in html
    assert "<script" not in html and "<img" not in html and "evil.example" not in html
    assert data["progress"]["left_for_me"] == 0 and data["progress"]["batch"]["pairs"] == 1


def test_next_json_says_nothing_left(physician, open_batch):
    client = logged_in(physician)
    a = client.get(f"/workspace/{open_batch.pk}/next.json").json()["assignment"]
    client.post(f"/api/assignments/{a['assignment_id']}/skip/", {"reason": "not my field"}, content_type="application/json")
    assert client.get(f"/workspace/{open_batch.pk}/next.json").json()["assignment"] is None


def test_markdown_sanitiser_strips_active_content():
    html = markdown_to_safe_html('<img src=x onerror=alert(1)> [a](javascript:alert(1)) ![b](https://x.org/b.png) **ok**')
    assert "<img" not in html and "href" not in html and "x.org" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # raw HTML is shown as inert text
    assert "<strong>ok</strong>" in html


def test_upload_with_bad_line_shows_line_number_and_imports_nothing(admin_user, physician):
    batch = factories.BatchFactory(name="Draft", specialty=physician.profile.specialty)
    good = json.dumps({"prompt": "Q?", "response_a": "A.", "response_b": "B."})
    upload = SimpleUploadedFile("pairs.jsonl", (good + "\n{not json\n").encode(), content_type="application/x-ndjson")
    response = logged_in(admin_user).post(f"/dashboard/batches/{batch.pk}/upload/", {"file": upload})
    assert response.status_code == 400
    assert "Line 2" in response.content.decode() and "invalid JSON" in response.content.decode()
    assert batch.pairs.count() == 0


def test_upload_good_file_then_open(admin_user, physician):
    batch = factories.BatchFactory(name="Draft", specialty=physician.profile.specialty)
    lines = "\n".join(json.dumps({"prompt": f"Q{i}?", "response_a": "A.", "response_b": "B."}) for i in range(3))
    client = logged_in(admin_user)
    client.post(f"/dashboard/batches/{batch.pk}/upload/", {"file": SimpleUploadedFile("p.jsonl", lines.encode())})
    assert batch.pairs.count() == 3
    client.post(f"/dashboard/batches/{batch.pk}/open/")
    batch.refresh_from_db()
    assert batch.state == BatchState.OPEN


def test_create_batch_form(admin_user, specialty):
    response = logged_in(admin_user).post("/dashboard/", {
        "name": "New one", "specialty": specialty.pk, "raters_per_pair": 2, "rationale_policy": "always",
        "calibration_rate": 0.0, "lease_minutes": 10, "description": "",
    })
    assert response.status_code == 302
    batch = specialty.batches.get(name="New one")
    assert batch.lease_seconds == 600 and batch.rationale_policy == "always"


def test_close_needs_confirmation_and_says_what_it_starts(admin_user, open_batch):
    client = logged_in(admin_user)
    page = client.get(f"/dashboard/batches/{open_batch.pk}/").content.decode()
    assert "start the training pipeline" in page and escape(open_batch.training_pipeline) in page
    assert client.post(f"/dashboard/batches/{open_batch.pk}/close/", {"force": "on"}).status_code == 400
    refused = client.post(f"/dashboard/batches/{open_batch.pk}/close/", {"confirm": "on"})
    assert refused.status_code == 409 and "lack judgments" in refused.content.decode()
    client.post(f"/dashboard/batches/{open_batch.pk}/close/", {"confirm": "on", "force": "on"})
    open_batch.refresh_from_db()
    assert open_batch.state == BatchState.CLOSED and open_batch.pairs_short_at_close == 1


def test_rater_deactivate_and_activate(admin_user, physician):
    client = logged_in(admin_user)
    client.post(f"/dashboard/raters/{physician.pk}/active/", {})
    assert Profile.objects.get(user=physician).is_active is False
    client.post(f"/dashboard/raters/{physician.pk}/active/", {"is_active": "on"})
    assert Profile.objects.get(user=physician).is_active is True
    assert "dr_house" in client.get("/dashboard/raters/").content.decode()


def test_audit_filter_by_user(admin_user, physician):
    client = logged_in(admin_user)
    client.post(f"/dashboard/raters/{physician.pk}/active/", {})
    AuditEvent.objects.create(actor=physician, action="judgment.submitted", object_type="judgment", object_id="9")
    body = client.get("/dashboard/audit/", {"user": "admin"}).content.decode()
    assert "rater.deactivated" in body and "judgment.submitted" not in body


def test_judgment_review_shows_spans_in_my_display_order(physician, open_batch):
    pair = open_batch.pairs.get()
    judgment = factories.add_judgment(
        pair, physician, -1, a_shown_first=False,
        error_spans=[{"response": "b", "start": 0, "end": 4, "type": "omission", "text": "Rest"}],
    )
    body = logged_in(physician).get(f"/judgments/{judgment.pk}/").content.decode()
    # B was shown first, so its span belongs to Response 1 on this page; A>B reads "Response 2 better".
    review = json.loads(body.split('id="review-data" type="application/json">')[1].split("</script>")[0])
    assert review[0]["spans"] == [{"start": 0, "end": 4, "type": "omission"}]
    assert "Response 2 better" in body


def test_judgment_review_of_someone_else_is_404(physician, open_batch, specialty):
    other = factories.physician("dr_other", specialty)
    judgment = factories.add_judgment(open_batch.pairs.get(), other, 0)
    assert logged_in(physician).get(f"/judgments/{judgment.pk}/").status_code == 404
    assert Judgment.objects.count() == 1


# ---------------------------------------------------------------- agreement, exports, training pages

def test_agreement_page_shows_headline_heatmap_and_adjudicates(admin_user):
    batch, pairs, raters = factories.judged_batch(n_pairs=6, n_raters=3, seed=2, agreement=0.5)
    client = logged_in(admin_user)
    body = client.get(f"/dashboard/batches/{batch.pk}/agreement/").content.decode()
    assert "Krippendorff" in body and "95% CI" in body and "Pairwise Cohen" in body and "<svg" in body
    assert "Landis &amp; Koch" in body
    response = client.post(f"/dashboard/batches/{batch.pk}/agreement/?pair={pairs[0].pk}",
                           {"pair": pairs[0].pk, "preference": "-1", "note": "Guideline says A.", "b_unsafe": "on"})
    assert response.status_code == 302
    adjudication = pairs[0].adjudications.get()
    assert adjudication.preference == -1 and adjudication.b_unsafe and adjudication.decided_by == admin_user
    assert client.post(f"/dashboard/batches/{batch.pk}/agreement/?pair={pairs[1].pk}",
                       {"pair": pairs[1].pk, "preference": "0", "note": ""}).status_code == 400


def test_exports_page_creates_and_lists_downloadable_snapshot(admin_user, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    batch, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=3)
    client = logged_in(admin_user)
    assert client.post("/dashboard/exports/", {"batch": batch.pk}).status_code == 302
    body = client.get(f"/dashboard/exports/?batch={batch.pk}").content.decode()
    snapshot = batch.exports.get()
    name = snapshot.files[0]["name"]
    assert f"/api/exports/{snapshot.pk}/files/{name}" in body
    assert client.get(f"/api/exports/{snapshot.pk}/files/{name}").status_code == 200


def test_training_pages_list_and_detail_with_chart_data(admin_user, tmp_path, settings):
    from annotation.export_services import export_create
    from training.models import TrainingMetric, TrainingPipeline, TrainingRun

    settings.MEDIA_ROOT = tmp_path
    batch, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=4)
    snapshot = export_create(batch=batch, params=None, created_by=admin_user)
    pipeline = TrainingPipeline.objects.create(export=snapshot, spec="reward_model")
    run = TrainingRun.objects.create(pipeline=pipeline, kind="reward_model", export=snapshot, status="running",
                                     progress=0.5, current_step=5, total_steps=10)
    for step in (1, 2, 3):
        TrainingMetric.objects.create(run=run, step=step, values={"loss": 1.0 / step, "eval_accuracy": 0.5 + step / 10})
    client = logged_in(admin_user)
    assert f"/dashboard/training/{run.pk}/" in client.get("/dashboard/training/").content.decode()
    body = client.get(f"/dashboard/training/{run.pk}/").content.decode()
    charts = json.loads(body.split('id="chart-data" type="application/json">')[1].split("</script>")[0])
    assert charts["loss"] == [[1, 1.0], [2, 0.5], [3, 1.0 / 3]] and len(charts["accuracy"]) == 3
    client.post(f"/dashboard/training/{run.pk}/cancel/")
    run.refresh_from_db()
    assert run.cancel_requested


def test_missing_capability_shows_not_available(admin_user, monkeypatch):
    from frontend import insight_views

    monkeypatch.setattr(insight_views, "capability", lambda *a, **k: None)
    body = logged_in(admin_user).get("/dashboard/training/").content.decode()
    assert "Not available yet" in body
