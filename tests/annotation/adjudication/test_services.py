"""Adjudication: disputed pairs, the side-by-side view, and recording a final decision."""

import pytest

from annotation.adjudication import selectors as adjudication_selectors
from annotation.adjudication import services as adjudication_services
from annotation.errors import DomainError, Forbidden
from annotation.models import Adjudication, AuditEvent, Judgment
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def disputed():
    """Pair 0: raters on opposite sides; pair 1: a tie against a preference; pair 2: unanimous."""
    batch = factories.BatchFactory(name="disputes", state="open")
    pairs = factories.make_pairs(batch, 3)
    raters = [factories.physician(f"doc_{i}", batch.specialty) for i in range(3)]
    votes = [(-2, 1, 2), (-1, -1, 0), (1, 1, 1)]
    for pair, prefs in zip(pairs, votes):
        for rater, pref, shown in zip(raters, prefs, (True, False, True)):
            factories.add_judgment(
                pair, rater, pref, a_shown_first=shown, criteria={"accuracy": pref}, flags={"a": ["hallucination"], "b": []},
                rationale=f"{rater.username} reasons", a_unsafe=pref > 0,
            )
    return batch, pairs, raters


@pytest.mark.parametrize("value, expected", [("A>>B", -2), ("a>b", -1), ("=", 0), ("B>A", 1), ("B >> A", 2), (2, 2), ("-1", -1)])
def test_preference_parse(value, expected):
    assert adjudication_services.preference_parse(value) == expected


@pytest.mark.parametrize("value", ["A>>>B", 3, -3, True, None, "", 1.5])
def test_preference_parse_rejects(value):
    with pytest.raises(DomainError):
        adjudication_services.preference_parse(value)


def test_disputes_are_ranked_and_unanimous_pairs_left_out(disputed):
    batch, pairs, _ = disputed
    listing = adjudication_selectors.batch_disputes_list(batch=batch)
    assert listing["count"] == 2
    assert [d["pair"] for d in listing["results"]] == [pairs[0].pk, pairs[1].pk]
    assert listing["results"][0]["opposite_sides"] and listing["results"][0]["spread"] == 4
    assert listing["results"][0]["counts"] == {"-2": 1, "-1": 0, "0": 0, "1": 1, "2": 1}


def test_detail_shows_every_rater_side_by_side(disputed):
    _, pairs, raters = disputed
    detail = adjudication_selectors.adjudication_detail(pair=pairs[0])
    assert [j["rater"] for j in detail["judgments"]] == [r.username for r in raters]
    first = detail["judgments"][0]
    assert first["preference"] == {"value": -2, "symbol": "A>>B", "label": "A much better"}
    assert first["criteria"]["accuracy"]["symbol"] == "A>>B"
    assert first["flags"] == {"a": ["hallucination"], "b": []}
    assert first["rationale"] == "doc_0 reasons" and first["shown_left"] == "A"
    assert detail["judgments"][1]["shown_left"] == "B"
    assert detail["summary"]["disputed"] and detail["summary"]["b_unsafe"] == 0 and detail["summary"]["a_unsafe"] == 2
    assert detail["adjudication"] is None and detail["a"]["text"] and detail["prompt"]


def test_record_keeps_raw_judgments_audits_and_newest_wins(disputed, admin_user):
    batch, pairs, _ = disputed
    before = list(Judgment.objects.filter(pair=pairs[0]).values_list("id", "preference", "is_current"))
    adjudication_services.adjudication_record(pair=pairs[0], decided_by=admin_user, preference="B>A", note="First look.")
    adjudication_services.adjudication_record(pair=pairs[0], decided_by=admin_user, preference=-2, note="On reflection A is safer.", a_unsafe=False, b_unsafe=True)
    assert list(Judgment.objects.filter(pair=pairs[0]).values_list("id", "preference", "is_current")) == before
    detail = adjudication_selectors.adjudication_detail(pair=pairs[0])
    assert detail["adjudication"]["preference"]["value"] == -2 and detail["adjudication"]["b_unsafe"]
    assert len(detail["history"]) == 2
    events = AuditEvent.objects.filter(action="adjudication.recorded", batch=batch)
    assert events.count() == 2 and events.first().data["note"] == "On reflection A is safer."
    assert adjudication_selectors.batch_disputes_list(batch=batch, status="adjudicated")["count"] == 1
    open_ = adjudication_selectors.batch_disputes_list(batch=batch, status="open")
    assert [d["pair"] for d in open_["results"]] == [pairs[1].pk]


def test_record_needs_the_right_and_a_note(disputed, physician):
    _, pairs, _ = disputed
    with pytest.raises(Forbidden):
        adjudication_services.adjudication_record(pair=pairs[0], decided_by=physician, preference=0, note="I think so.")
    physician.profile.can_adjudicate = True
    physician.profile.save(update_fields=["can_adjudicate"])
    with pytest.raises(DomainError, match="note is required"):
        adjudication_services.adjudication_record(pair=pairs[0], decided_by=physician, preference=0, note="   ")
    adjudication_services.adjudication_record(pair=pairs[0], decided_by=physician, preference=0, note="Equivalent.")
    assert Adjudication.objects.get(pair=pairs[0]).decided_by == physician


# --- API -----------------------------------------------------------------------------------------


def test_adjudication_api(disputed, admin_client, physician_client, anon_client):
    _, pairs, _ = disputed
    url = f"/api/pairs/{pairs[0].pk}/adjudication/"
    assert anon_client.get(url).status_code in (401, 403)
    assert physician_client.get(url).status_code == 403
    assert physician_client.post(url, {"preference": "A>B", "note": "x"}, format="json").status_code == 403
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(url, {"preference": "A>B", "note": "Clear guideline."}, format="json")
    assert response.status_code == 201
    assert response.json()["adjudication"]["preference"]["value"] == -1

    for body, field in (({"preference": "A>B"}, "note"), ({"preference": "A>B", "note": ""}, "note"),
                        ({"preference": "best", "note": "x"}, "preference"), ({"preference": 7, "note": "x"}, "preference")):
        bad = admin_client.post(url, body, format="json")
        assert bad.status_code == 400, body
        assert field in bad.json()["detail"]
    assert admin_client.get("/api/pairs/999999/adjudication/").status_code == 404


def test_disputes_api(disputed, admin_client, physician_client):
    batch, pairs, _ = disputed
    url = f"/api/batches/{batch.pk}/disputes/"
    assert physician_client.get(url).status_code == 403
    body = admin_client.get(url, {"limit": 1}).json()
    assert body["count"] == 2 and [d["pair"] for d in body["results"]] == [pairs[0].pk]
    assert admin_client.get(url, {"status": "maybe"}).status_code == 400
    assert admin_client.get(url, {"limit": "x"}).status_code == 400


def test_senior_physician_can_adjudicate_over_the_api(disputed):
    batch, pairs, _ = disputed
    senior = factories.physician("senior", batch.specialty)
    senior.profile.can_adjudicate = True
    senior.profile.save(update_fields=["can_adjudicate"])
    response = client_for(senior).post(f"/api/pairs/{pairs[1].pk}/adjudication/", {"preference": "=", "note": "Same."}, format="json")
    assert response.status_code == 201


def test_senior_physician_is_kept_to_their_specialty(disputed):
    batch, pairs, _ = disputed
    psych = factories.SpecialtyFactory(name="Psychiatry", slug="psychiatry")
    outsider = factories.physician("senior_psych", psych)
    outsider.profile.can_adjudicate = True
    outsider.profile.save(update_fields=["can_adjudicate"])
    client = client_for(outsider)
    assert client.get(f"/api/pairs/{pairs[0].pk}/adjudication/").status_code == 404
    assert client.post(f"/api/pairs/{pairs[0].pk}/adjudication/", {"preference": "=", "note": "No."}, format="json").status_code == 404
    assert client.get(f"/api/batches/{batch.pk}/disputes/").status_code == 404
    assert not Adjudication.objects.exists()


def test_adjudicator_may_not_decide_a_pair_they_rated_unless_the_batch_allows_it(disputed, admin_user):
    batch, pairs, raters = disputed
    senior = raters[0]
    senior.profile.can_adjudicate = True
    senior.profile.save(update_fields=["can_adjudicate"])
    with pytest.raises(Forbidden, match="rated this pair yourself"):
        adjudication_services.adjudication_record(pair=pairs[0], decided_by=senior, preference=0, note="Mine.")
    assert not Adjudication.objects.exists()
    # Over the API it is a 403 with the reason.
    refused = client_for(senior).post(f"/api/pairs/{pairs[0].pk}/adjudication/", {"preference": "=", "note": "Mine."}, format="json")
    assert refused.status_code == 403 and "rated this pair yourself" in refused.json()["detail"]
    # An admin allows it for this batch: audited, and the decision records that its author rated the pair.
    from annotation.labeling.services import batch_settings_update

    batch_settings_update(batch_id=batch.pk, actor=admin_user, allow_self_adjudication=True)
    assert AuditEvent.objects.get(action="batch.settings_changed").data == {"allow_self_adjudication": {"from": False, "to": True}}
    pairs[0].refresh_from_db()
    adjudication_services.adjudication_record(pair=pairs[0], decided_by=senior, preference=0, note="Mine, allowed.")
    assert AuditEvent.objects.get(action="adjudication.recorded").data["self_rated"] is True
    # Someone who did not rate the pair was never affected.
    outsider = factories.physician("doc_outside", batch.specialty)
    outsider.profile.can_adjudicate = True
    outsider.profile.save(update_fields=["can_adjudicate"])
    batch_settings_update(batch_id=batch.pk, actor=admin_user, allow_self_adjudication=False)
    pairs[1].refresh_from_db()
    adjudication_services.adjudication_record(pair=pairs[1], decided_by=outsider, preference=0, note="Independent.")
