"""The dashboard's overview and batch list, checked against what the database says: every
figure on the page is recomputed here from the rows (judgments, pairs, assignments), not from
the counters or selectors the page uses."""

import re
from datetime import timedelta

import pytest
from django.db.models import Count, F, Q
from django.test import Client
from django.utils import timezone

from annotation.agreement import services as agreement_reports
from annotation.labeling.assignment import JudgmentInput, judgment_submit, pair_lease_next
from annotation.models import (
    Assignment, AssignmentStatus, Batch, BatchState, Judgment, Pair, Profile, Role,
)
from tests import factories

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{name}"[^>]*>(.*?)</(dd|td|span)>', html, re.S)
    assert match, f"no {name} on the page"
    return text(match.group(1))


def listed(html: str, name: str) -> str:
    return text(re.search(rf'data-list="{name}">(.*?)</ul>', html, re.S).group(1))


def batch_rows(html: str) -> dict[int, str]:
    return {int(pk): row for pk, row in re.findall(r'<tr data-batch="(\d+)">(.*?)</tr>', html, re.S)}


def submit(rater, batch, key: str) -> Judgment:
    assignment = pair_lease_next(rater=rater, batch_id=batch.pk)
    judgment, _ = judgment_submit(assignment_id=assignment.pk, rater=rater,
                                  data=JudgmentInput(preference="1>2", idempotency_key=key))
    return judgment


@pytest.fixture
def morning(admin_user, tmp_path, settings):
    """Batches in every state the admin meets in a morning."""
    from annotation.exports.services import export_create
    from training.models import TrainingPipeline, TrainingRun

    settings.MEDIA_ROOT = tmp_path
    # History: a closed batch judged by the factory, exported and trained. The factory writes its
    # judgment rows directly (no judgment_submit, so no audit event): they are dated before this week.
    closed, _, _ = factories.judged_batch(n_pairs=4, n_raters=2, seed=1, name="Last month")
    week_ago = timezone.now() - timedelta(days=8)
    Judgment.objects.filter(batch=closed).update(created_at=week_ago)
    snapshot = export_create(batch=closed, params=None, created_by=admin_user)
    pipeline = TrainingPipeline.objects.create(export=snapshot, spec="reward_model")
    runs = [TrainingRun.objects.create(pipeline=pipeline, kind="reward_model", export=snapshot, status=status)
            for status in ("succeeded", "failed", "queued", "running", "succeeded", "running")]

    specialty = closed.specialty
    doc_a, doc_b, doc_c = (factories.physician(name, specialty) for name in ("doc_a", "doc_b", "doc_c"))
    busy = factories.BatchFactory(name="Busy", specialty=specialty, state=BatchState.OPEN, raters_per_pair=2,
                                  calibration_rate=0.0, gate_min_pairs=20)
    factories.make_pairs(busy, 3)
    for i in range(3):
        submit(doc_a, busy, f"a{i}")
    submit(doc_b, busy, "b0")
    submit(doc_b, busy, "b1")
    # doc_c holds a lease that ends in two minutes.
    lease = pair_lease_next(rater=doc_c, batch_id=busy.pk)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now() + timedelta(minutes=2))

    waiting = factories.BatchFactory(name="Waiting draft", specialty=specialty, calibration_rate=0.0)
    factories.make_pairs(waiting, 2)
    empty = factories.BatchFactory(name="Empty draft", specialty=specialty)
    done, _, _ = factories.judged_batch(n_pairs=2, n_raters=2, seed=2, state=BatchState.OPEN, name="Done open")
    Judgment.objects.filter(batch=done).update(created_at=week_ago)
    return {"busy": busy, "waiting": waiting, "empty": empty, "done": done, "closed": closed, "runs": runs,
            "snapshot": snapshot, "doc_c": doc_c}


def test_overview_figures_equal_what_the_database_says(admin_user, morning):
    html = logged_in(admin_user).get("/dashboard/").content.decode()
    now = timezone.now()
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    first = Judgment.objects.filter(revision=1)
    assert figure(html, "judgments-today") == str(first.filter(created_at__gte=today).count()) == "5"
    assert figure(html, "judgments-week") == str(first.filter(created_at__gte=week).count())

    expiring = Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__gt=now,
                                         expires_at__lte=now + timedelta(minutes=5)).count()
    assert figure(html, "leases-expiring") == str(expiring) == "1"

    short = (Pair.objects.filter(batch__state=BatchState.OPEN, gold_preference__isnull=True)
             .annotate(n=Count("judgments", filter=Q(judgments__is_current=True)))
             .filter(n__lt=F("batch__raters_per_pair")).count())
    assert figure(html, "pairs-short") == str(short) == "1"

    assert listed(html, "to-open") .startswith("Waiting draft") and "Empty draft" not in listed(html, "to-open")
    assert "Done open" in listed(html, "to-close") and "Busy" not in listed(html, "to-close")

    # Behind: below half an even share of the specialty's regular judgments so far.
    physicians = Profile.objects.filter(role=Role.PHYSICIAN, is_active=True, specialty=morning["busy"].specialty)
    regular = Judgment.objects.filter(is_current=True, pair__gold_preference__isnull=True).exclude(batch__state=BatchState.DRAFT)
    share = regular.count() / physicians.count()
    behind = sorted(p.user.username for p in physicians if Judgment.objects.filter(rater=p.user, is_current=True).count() < share / 2)
    assert "doc_c" in behind
    shown = listed(html, "behind")
    assert sorted(re.findall(r"(\S+) Cardiology:", shown)) == behind

    newest = [run.pk for run in sorted(morning["runs"], key=lambda r: (r.created_at, r.pk), reverse=True)[:5]]
    assert re.findall(r"Run (\d+) ·", listed(html, "runs")) == [str(pk) for pk in newest]


def test_batch_list_says_where_each_batch_stands(admin_user, morning):
    busy, closed = morning["busy"], morning["closed"]
    # A stored report for the small batch: 1 pair rated twice, its gate wants 20.
    agreement_reports.agreement_report_for_batch(batch=busy)
    rows = batch_rows(logged_in(admin_user).get("/dashboard/").content.decode())
    assert set(rows) == set(Batch.objects.values_list("pk", flat=True))
    for batch in Batch.objects.all():
        regular = Pair.objects.filter(batch=batch, gold_preference__isnull=True)
        done = Judgment.objects.filter(batch=batch, is_current=True, pair__gold_preference__isnull=True).count()
        assert figure(rows[batch.pk], "progress") == f"{done} / {regular.count() * batch.raters_per_pair}"
    assert figure(rows[busy.pk], "gate") == "not enough data"
    assert "failed" not in text(rows[busy.pk]).lower()
    assert figure(rows[morning["empty"].pk], "gate") == "not enough data"
    assert f'href="/dashboard/exports/?batch={closed.pk}"' in rows[closed.pk]
    assert f"v{morning['snapshot'].version}" in rows[closed.pk]
    latest = max(morning["runs"], key=lambda r: (r.created_at, r.pk))
    assert f'href="/dashboard/training/{latest.pk}/"' in rows[closed.pk] and latest.get_status_display() in rows[closed.pk]
    assert "none" in figure(rows[busy.pk], "export")


def test_a_draft_batch_opens_from_the_list(admin_user, morning):
    waiting = morning["waiting"]
    client = logged_in(admin_user)
    rows = batch_rows(client.get("/dashboard/").content.decode())
    action = f'action="/dashboard/batches/{waiting.pk}/open/"'
    assert action in rows[waiting.pk] and "csrfmiddlewaretoken" in rows[waiting.pk]
    assert "disabled" in rows[morning["empty"].pk], "a draft without pairs cannot be opened"
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin_user)
    page = csrf_client.get("/dashboard/").content.decode()
    token = re.search(rf'{re.escape(action)}.*?name="csrfmiddlewaretoken" value="([^"]+)"', page, re.S).group(1)
    response = csrf_client.post(f"/dashboard/batches/{waiting.pk}/open/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == BatchState.OPEN
