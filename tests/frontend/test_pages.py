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
    review = json.loads(body.split('id="span-data" type="application/json">')[1].split("</script>")[0])
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
    # The report's disputes link to the adjudication page admins share with senior physicians.
    assert "/adjudicate/pairs/" in body
    old_link = client.get(f"/dashboard/batches/{batch.pk}/agreement/?pair={pairs[0].pk}")
    assert old_link.status_code == 302 and old_link["Location"].startswith(f"/adjudicate/pairs/{pairs[0].pk}/?next=")
    back = f"/dashboard/batches/{batch.pk}/agreement/#disputes"
    response = client.post(f"/adjudicate/pairs/{pairs[0].pk}/",
                           {"next": back, "preference": "-1", "note": "Guideline says A.", "b_unsafe": "on"})
    assert response.status_code == 302 and response["Location"] == back
    adjudication = pairs[0].adjudications.get()
    assert adjudication.preference == -1 and adjudication.b_unsafe and adjudication.decided_by == admin_user
    assert client.post(f"/adjudicate/pairs/{pairs[1].pk}/", {"preference": "0", "note": ""}).status_code == 400
    assert client.post(f"/adjudicate/pairs/{pairs[1].pk}/", {"preference": "0", "note": "x", "next": "https://evil.example/"})["Location"] \
        == f"/adjudicate/?batch={batch.pk}"  # never an off-site redirect


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
    from annotation.exports.services import export_create
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


# ---------------------------------------------------------------- adjudication by senior physicians

@pytest.fixture
def disputed():
    """A closed Cardiology batch whose raters disagree; the first pair's raters sit on opposite sides."""
    batch, pairs, raters = factories.judged_batch(n_pairs=3, n_raters=3, seed=7)
    for rater, pref in zip(raters, (-2, 1, 0)):
        judgment = rater.judgments.get(pair=pairs[0])
        Judgment.objects.filter(pk=judgment.pk).update(
            preference=pref, rationale=f"{rater.username} reasons", criteria={"accuracy": pref},
            flags={"a": ["hallucination"], "b": []}, error_spans=[{"response": "b", "start": 0, "end": 5, "type": "omission", "text": "Vague"}])
    return batch, pairs, raters


@pytest.fixture
def senior(specialty):
    user = factories.physician("dr_senior", specialty)
    Profile.objects.filter(user=user).update(can_adjudicate=True)
    return user


def test_plain_physician_gets_403_on_adjudication(physician, disputed):
    _, pairs, _ = disputed
    client = logged_in(physician)
    assert client.get("/adjudicate/").status_code == 403
    assert client.get(f"/adjudicate/pairs/{pairs[0].pk}/").status_code == 403
    assert client.post(f"/adjudicate/pairs/{pairs[0].pk}/", {"preference": "0", "note": "mine"}).status_code == 403
    assert not pairs[0].adjudications.exists()
    assert "/adjudicate/" not in client.get("/").content.decode()  # no nav link without the right
    assert Client().get("/adjudicate/")["Location"].startswith("/login/")


def test_senior_physician_lists_sees_side_by_side_and_decides(senior, disputed):
    batch, pairs, raters = disputed
    client = logged_in(senior)
    assert 'href="/adjudicate/"' in client.get("/").content.decode()
    listing = client.get("/adjudicate/").content.decode()
    assert batch.name in listing and f"/adjudicate/pairs/{pairs[0].pk}/?next=" in listing and "opposite sides" in listing
    page = client.get(f"/adjudicate/pairs/{pairs[0].pk}/?next=/adjudicate/%3Fbatch%3D{batch.pk}")
    body = page.content.decode()
    assert page.status_code == 200
    for rater in raters:
        assert rater.username in body and f"{rater.username} reasons" in body
    assert "A much better" in body and "B better" in body and "Clinical accuracy" in body  # choices and rubric
    assert "Hallucination" in body and "Omission" in body and "Vague" in body  # flags and spans
    highlights = json.loads(body.split('id="span-data" type="application/json">')[1].split("</script>")[0])
    assert [len(h["spans"]) for h in highlights] == [0, 3]
    response = client.post(f"/adjudicate/pairs/{pairs[0].pk}/", {
        "preference": "-1", "note": "Current guideline favours A.", "next": f"/adjudicate/?batch={batch.pk}"})
    assert response.status_code == 302 and response["Location"] == f"/adjudicate/?batch={batch.pk}"
    decision = pairs[0].adjudications.get()
    assert decision.decided_by == senior and decision.preference == -1
    assert AuditEvent.objects.filter(action="adjudication.recorded", actor=senior).exists()
    assert Judgment.objects.filter(pair=pairs[0], preference=-2).exists()  # raw votes untouched
    # Settled: it leaves the default (open) list, shows under "adjudicated", and the form comes back pre-filled.
    assert f"/adjudicate/pairs/{pairs[0].pk}/" not in client.get(f"/adjudicate/?batch={batch.pk}").content.decode()
    assert f"/adjudicate/pairs/{pairs[0].pk}/" in client.get(f"/adjudicate/?batch={batch.pk}&status=adjudicated").content.decode()
    again = client.get(f"/adjudicate/pairs/{pairs[0].pk}/").content.decode()
    assert 'value="-1" id="id_preference_1" required checked' in again and "Revise the decision" in again


def test_senior_physician_only_sees_their_specialty(senior, disputed):
    other = factories.SpecialtyFactory(name="Neurology", slug="neurology")
    neuro = factories.BatchFactory(name="Stroke", specialty=other, state=BatchState.CLOSED)
    pair = factories.make_pair(neuro, "Face droop?", "Call 999.", "Wait.")
    factories.BatchFactory(name="Draft cardio", specialty=senior.profile.specialty)
    client = logged_in(senior)
    listing = client.get("/adjudicate/").content.decode()
    assert "Stroke" not in listing and "Draft cardio" not in listing
    assert client.get(f"/adjudicate/?batch={neuro.pk}").content.decode().count("Stroke") == 0
    assert client.get(f"/adjudicate/pairs/{pair.pk}/").status_code == 404
    assert client.post(f"/adjudicate/pairs/{pair.pk}/", {"preference": "0", "note": "n"}).status_code == 404
    assert client.get("/adjudicate/pairs/999999/").status_code == 404
    assert not pair.adjudications.exists()


# ---------------------------------------------------------------- correcting a submitted judgment

@pytest.fixture
def my_judgment(physician, open_batch):
    """B was shown first (Response 1): stored A>B reads "Response 2 better" on my screen."""
    return factories.add_judgment(
        open_batch.pairs.get(), physician, -1, a_shown_first=False, criteria={"accuracy": -2},
        flags={"a": ["hallucination"], "b": []}, b_unsafe=True, harm_severity="mild", rationale="A is right.",
        error_spans=[{"response": "b", "start": 0, "end": 4, "type": "omission", "text": "Rest"}],
    )


def _correction_data(body: str) -> dict:
    return json.loads(body.split('id="correction-data" type="application/json">')[1].split("</script>")[0])


def test_correct_form_is_prefilled_in_my_display_order(physician, my_judgment):
    client = logged_in(physician)
    assert f"/judgments/{my_judgment.pk}/correct/" in client.get(f"/judgments/{my_judgment.pk}/").content.decode()
    body = client.get(f"/judgments/{my_judgment.pk}/correct/").content.decode()
    data = _correction_data(body)
    pair = my_judgment.pair
    assert [r["text"] for r in data["assignment"]["responses"]] == [pair.completion_b.text, pair.completion_a.text]
    assert data["prefill"] == {
        "preference": "2>1", "criteria": {"accuracy": "2>>1"}, "flags": {"1": [], "2": ["hallucination"]},
        "unsafe": {"1": True, "2": False}, "both_unacceptable": False, "harm_severity": "mild", "rationale": "A is right.",
        "time_spent_ms": 30_000, "error_spans": [{"response": 1, "start": 0, "end": 4, "type": "omission", "text": "Rest"}],
    }
    assert 'data-mode="correct"' in body and "skip-dialog" not in body and "Save as revision 2" in body


def test_correction_stores_a_revision_and_review_shows_history(physician, my_judgment):
    client = logged_in(physician)
    response = client.post(f"/api/assignments/{my_judgment.assignment_id}/judgment/", {
        "preference": "=", "idempotency_key": "fix-1", "rationale": "On reflection, equivalent.", "unsafe": {"1": True},
        "harm_severity": "mild"}, content_type="application/json")
    assert response.status_code == 201
    new = Judgment.objects.get(pk=response.json()["id"])
    assert new.revision == 2 and new.is_current and new.preference == 0
    body = client.get(f"/judgments/{new.pk}/").content.decode()
    assert "Revision history" in body and "Revision 1" in body and "superseded" in body and "current" in body
    assert f"/judgments/{new.pk}/correct/" in body
    old = client.get(f"/judgments/{my_judgment.pk}/").content.decode()
    assert "kept as history" in old and f"/judgments/{my_judgment.pk}/correct/" not in old
    # The correct page of an old revision goes to the current one.
    assert client.get(f"/judgments/{my_judgment.pk}/correct/")["Location"] == f"/judgments/{new.pk}/correct/"


def test_cannot_correct_someone_elses_judgment(physician, open_batch, specialty):
    other = factories.physician("dr_other", specialty)
    theirs = factories.add_judgment(open_batch.pairs.get(), other, 0)
    client = logged_in(physician)
    assert client.get(f"/judgments/{theirs.pk}/correct/").status_code == 404
    response = client.post(f"/api/assignments/{theirs.assignment_id}/judgment/",
                           {"preference": "1>2", "idempotency_key": "hijack"}, content_type="application/json")
    assert response.status_code == 404
    assert Judgment.objects.count() == 1
    assert logged_in(factories.admin("admin2")).get(f"/judgments/{theirs.pk}/correct/").status_code == 403


def test_no_correction_once_the_batch_is_closed(physician, my_judgment, open_batch):
    open_batch.state = BatchState.CLOSED
    open_batch.save(update_fields=["state"])
    client = logged_in(physician)
    body = client.get(f"/judgments/{my_judgment.pk}/").content.decode()
    assert "Correct this judgment" not in body and "can no longer be corrected" in body
    response = client.get(f"/judgments/{my_judgment.pk}/correct/", follow=True)
    assert response.redirect_chain[-1][0] == f"/judgments/{my_judgment.pk}/"
    assert "can no longer be corrected" in response.content.decode()


def test_unknown_ids_are_404_pages_not_500(client, admin_user):
    client.force_login(admin_user)
    assert client.get("/dashboard/batches/999999/").status_code == 404
    assert client.get("/dashboard/batches/999999/agreement/").status_code == 404
