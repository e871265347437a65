"""Agreement across batches (/dashboard/agreement/) and the download links of the batch report:
who may see the trend, what it shows, and that every link answers with the right file."""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from annotation.models import Batch
from tests import factories
from tests.frontend.test_browser import CHROMIUM, SHOTS, browser, login, page  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

TREND = "/dashboard/agreement/"


@pytest.fixture(autouse=True)
def small_bootstrap(settings):
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 50  # the default 1000 is for real reports


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two_judged():
    """Two closed batches a week apart, the newer one created first, with different alpha gates."""
    newer, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=22, agreement=0.4, name="Chest pain")
    older, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=21, agreement=0.9, name="Sepsis triage")
    now = timezone.now()
    Batch.objects.filter(pk=older.pk).update(closed_at=now - timedelta(days=7), min_alpha=0.4)
    Batch.objects.filter(pk=newer.pk).update(closed_at=now, min_alpha=0.6)
    return older, newer


def test_trend_page_shows_both_batches_in_time_order(admin_user, two_judged):
    older, newer = two_judged
    body = logged_in(admin_user).get(TREND).content.decode()
    assert 'aria-current="page">Agreement</a>' in body
    assert body.index(f'/dashboard/batches/{older.pk}/agreement/') < body.index(f'/dashboard/batches/{newer.pk}/agreement/')
    table = body.split("<tbody>")[1]
    assert "Sepsis triage" in table and "Chest pain" in table
    assert table.count('<span class="muted small nowrap">(') == 4  # alpha and Fleiss intervals of both batches
    assert len(re.findall(r"badge badge-(?:open|danger)\">(?:passed|failed)", table)) == 2
    svg = body.split('<svg class="chart trend"')[1].split("</svg>")[0]
    assert "Krippendorff" in svg and "Fleiss" in svg and "Mean Cohen" in svg
    # The gates differ, so each batch gets its own dashed segment rather than one line.
    assert "gate 0.4" in svg and "gate 0.6" in svg and "gate α ≥" not in svg
    assert svg.count("95% CI") >= 2  # whiskers on alpha and Fleiss' kappa of each batch


def test_trend_page_common_gate_is_one_line(admin_user, two_judged):
    Batch.objects.update(min_alpha=0.5)
    svg = logged_in(admin_user).get(TREND).content.decode().split('<svg class="chart trend"')[1]
    assert svg.count("gate α ≥ 0.5") == 1


def test_trend_page_is_admin_only(physician):
    assert logged_in(physician).get(TREND).status_code == 403
    response = Client().get(TREND)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_trend_page_empty_state(admin_user):
    factories.BatchFactory(name="Never judged")
    body = logged_in(admin_user).get(TREND).content.decode()
    assert "No judged batches yet" in body and "Never judged" not in body and "<svg class=\"chart trend\"" not in body


def test_trend_downloads(admin_user, two_judged):
    older, newer = two_judged
    client = logged_in(admin_user)
    body = client.get(TREND).content.decode()
    assert "/api/agreement/trend/?format=csv" in body and "/api/agreement/trend/?format=json" in body
    response = client.get("/api/agreement/trend/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(r["batch"]) for r in rows] == [older.pk, newer.pk]
    assert {"name", "krippendorff_alpha", "krippendorff_alpha_ci_low", "fleiss_kappa_ci_high", "mean_cohen_kappa", "gate_passed"} <= set(rows[0])
    older.refresh_from_db()
    assert rows[0]["closed_at"] == older.closed_at.isoformat()
    response = client.get("/api/agreement/trend/?format=json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert [p["batch"] for p in response.json()["results"]] == [older.pk, newer.pk]


def test_trend_csv_is_admin_only(physician):
    assert logged_in(physician).get("/api/agreement/trend/?format=csv").status_code == 403


def test_batch_report_download_links_keep_the_level(admin_user):
    batch, pairs, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=23, agreement=0.6)
    batch.rubric = [{"key": "accuracy", "label": "Accuracy"}]
    batch.save(update_fields=["rubric"])
    for pair in pairs:
        for j in pair.judgments.all():
            j.criteria = {"accuracy": j.preference}
            j.save(update_fields=["criteria"])
    client = logged_in(admin_user)
    body = client.get(f"/dashboard/batches/{batch.pk}/agreement/?level=five").content.decode()
    assert "Per rubric criterion" in body and "Accuracy" in body
    links = set(re.findall(r'href="(/api/batches/\d+/agreement/\?[^"]+)"', body))
    tables = {"pairwise", "per_rater", "disputed", "criteria"}
    assert {f"/api/batches/{batch.pk}/agreement/?level=five&amp;format=csv&amp;table={t}" for t in tables} <= links
    assert f"/api/batches/{batch.pk}/agreement/?level=five&amp;format=json" in links
    for link in links:
        response = client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        if "format=csv" in link:
            assert response["Content-Type"].startswith("text/csv") and response.content.decode().count("\n") >= 2
        else:
            assert response["Content-Type"].startswith("application/json") and response.json()["level"] == "five"


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_trend_page_screenshot(page, live_server, admin_user, two_judged):
    factories.judged_batch(n_pairs=6, n_raters=4, seed=24, agreement=0.7, name="Stroke follow-up")
    login(page, live_server, admin_user.username)
    page.goto(f"{live_server.url}{TREND}")
    page.wait_for_selector("svg.trend")
    assert page.locator("table tbody tr").count() == 3
    page.screenshot(path=str(SHOTS / "agreement_trend.png"), full_page=True)
