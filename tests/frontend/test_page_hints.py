"""What the pages say when a figure or an action cannot mean what it seems: the gate with too
little data, Greek letters under uppercase headings, actions that cannot work yet, help texts that
fields point at, the favicon, and the physician's counts."""

import re

import pytest
from django.test import Client

from annotation.agreement.services import agreement_report_for_batch
from annotation.models import Assignment, BatchState
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_bootstrap(settings):
    settings.AGREEMENT_BOOTSTRAP_RESAMPLES = 50


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_gate_with_too_little_data_says_not_enough_data_never_failed(admin_user):
    lonely, _, _ = factories.judged_batch(n_pairs=4, n_raters=1, seed=3, name="One rater only")
    agreeing, _, _ = factories.judged_batch(n_pairs=8, n_raters=3, seed=4, agreement=1.0, name="All agree")
    assert agreement_report_for_batch(batch=lonely)["gate"]["status"] == "not_enough_data"
    assert agreement_report_for_batch(batch=agreeing)["gate"]["status"] == "passed"
    client = logged_in(admin_user)
    trend = client.get("/dashboard/agreement/").content.decode()
    row = re.search(r"<tr><td><a [^>]*><strong>One rater only</strong>.*?</tr>", trend, re.S).group(0)
    assert "not enough data" in row and "failed" not in row
    report = client.get(f"/dashboard/batches/{lonely.pk}/agreement/").content.decode()
    assert "not enough data yet" in report and "not passed" not in report


def test_greek_letters_under_uppercase_headings_stay_lowercase(admin_user):
    batch, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=5)
    client = logged_in(admin_user)
    for url in ("/dashboard/agreement/", f"/dashboard/batches/{batch.pk}/agreement/"):
        html = client.get(url).content.decode()
        headings = re.findall(r'<th scope="col"[^>]*>.*?</th>|<div class="label">.*?</div>', html)
        greek = [h for h in headings if "α" in h or "κ" in h]
        assert greek, url
        for heading in greek:  # every α and κ there is wrapped so text-transform cannot make it A or K
            assert not re.search(r"(?<!>)[ακ]", heading), heading


def test_granularity_is_chosen_with_a_button_not_on_change(admin_user):
    batch, _, _ = factories.judged_batch(n_pairs=6, n_raters=3, seed=6)
    html = logged_in(admin_user).get(f"/dashboard/batches/{batch.pk}/agreement/?level=five").content.decode()
    form = re.search(r'<form method="get" class="filters" aria-label="Granularity">.*?</form>', html, re.S).group(0)
    assert "onchange" not in form and '<button class="btn" type="submit">Show</button>' in form
    assert '<option value="five" selected>' in form


def test_actions_that_cannot_work_are_disabled_with_a_reason(admin_user, specialty):
    client = logged_in(admin_user)
    factories.BatchFactory(name="Still open", specialty=specialty, state=BatchState.OPEN)
    exports = client.get("/dashboard/exports/").content.decode()
    assert re.search(r'<button class="btn btn-primary" type="submit" disabled aria-describedby="ex-why">Create snapshot', exports)
    assert 'id="ex-why"' in exports and "close a batch first" in exports
    training = client.get("/dashboard/training/").content.decode()
    assert re.search(r'disabled aria-describedby="rt-why">Start pipeline', training) and 'id="rt-why"' in training

    factories.judged_batch(n_pairs=4, n_raters=2, seed=7)  # a closed batch: a snapshot can be made now
    exports = client.get("/dashboard/exports/").content.decode()
    assert "Create snapshot" in exports and 'id="ex-why"' not in exports
    assert not re.search(r"disabled[^>]*>Create snapshot", exports)


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/exports/", "/dashboard/training/", "/dashboard/audit/",
                                 "batch", "pair"])
def test_every_aria_describedby_points_at_an_element_on_the_page(admin_user, url, specialty):
    batch = factories.BatchFactory(name="Draft", specialty=specialty)
    if url == "batch":
        url = f"/dashboard/batches/{batch.pk}/"
    elif url == "pair":
        closed, pairs, _ = factories.judged_batch(n_pairs=2, n_raters=2, seed=8)
        url = f"/adjudicate/pairs/{pairs[0].pk}/"
    html = logged_in(admin_user).get(url).content.decode()
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    described = [i for value in re.findall(r'aria-describedby="([^"]+)"', html) for i in value.split()]
    assert described, url
    assert [i for i in described if i not in ids] == [], url


def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert 'rel="icon"' in client.get("/login/").content.decode()


def test_physician_counts_calibration_pairs_apart_like_the_batch_does(physician):
    from annotation.labeling.selectors import physician_queue

    batch = factories.BatchFactory(name="Mixed", specialty=physician.profile.specialty, state=BatchState.OPEN,
                                   raters_per_pair=1)
    regular = factories.make_pairs(batch, 2)
    gold = factories.make_pair(batch, "Gold?", "Yes.", "No.")
    gold.gold_preference = -2
    gold.save(update_fields=["gold_preference"])
    for pair, calibration in ((regular[0], False), (gold, True)):
        factories.add_judgment(pair, physician, -1)
        Assignment.objects.filter(pair=pair, rater=physician).update(is_calibration=calibration)
    row = physician_queue(user=physician)[0]
    assert row["mine_done"] == row["progress"]["judgments_done"] == 1
    assert row["mine_calibration"] == 1
    html = logged_in(physician).get("/").content.decode()
    assert "+ 1 calibration" in html
