"""The API contract, end to end through HTTP, and who may call what."""

import json
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotation.models import AuditEvent, Batch, BatchEvent, Judgment
from annotation.labeling.services import batch_close
from tests import factories
from tests.conftest import client_for

PAIR_LINES = "\n".join(json.dumps({"prompt": f"Q{i}?", "response_a": f"Good {i}.", "response_b": f"Bad {i}."}) for i in range(2))


def create_open_batch(admin_client, raters_per_pair=1) -> int:
    resp = admin_client.post("/api/batches/", {"name": "B1", "specialty": "Cardiology", "raters_per_pair": raters_per_pair}, format="json")
    assert resp.status_code == 201, resp.content
    batch_id = resp.json()["id"]
    assert resp.json()["state"] == "draft" and len(resp.json()["rubric"]) == 5
    assert admin_client.post(f"/api/batches/{batch_id}/pairs/", data=PAIR_LINES, content_type="application/x-ndjson").status_code == 201
    resp = admin_client.post(f"/api/batches/{batch_id}/open/")
    assert resp.status_code == 200 and resp.json()["state"] == "open"
    return batch_id


def test_full_labeling_flow(admin_client, physician_client, physician):
    batch_id = create_open_batch(admin_client)
    Batch.objects.filter(pk=batch_id).update(calibration_rate=0)
    for _ in range(2):
        nxt = physician_client.get("/api/next/")
        assert nxt.status_code == 200
        body = nxt.json()
        assert set(body) >= {"assignment_id", "prompt", "responses", "rubric", "lease_expires_at"}
        assert [r["slot"] for r in body["responses"]] == [1, 2]
        url = f"/api/assignments/{body['assignment_id']}/judgment/"
        payload = {"preference": "1>2", "idempotency_key": f"key-{body['assignment_id']}", "criteria": {"safety": "1>>2"},
                   "flags": {"2": ["unsafe_advice"]}, "rationale": "Response 2 misses the red flag.", "time_spent_ms": 41000}
        first = physician_client.post(url, payload, format="json")
        assert first.status_code == 201, first.content
        replay = physician_client.post(url, payload, format="json")
        assert replay.status_code == 200 and replay.json() == first.json()
        # the stored judgment is canonical: the response shown first was better
        j = Judgment.objects.get(pk=first.json()["id"])
        assert j.preference == (-1 if j.a_shown_first else 1)
        assert first.json()["preference"] == "1>2"
    assert physician_client.get("/api/next/").status_code == 204
    detail = admin_client.get(f"/api/batches/{batch_id}/").json()
    assert detail["progress"]["judgments_done"] == 2 and detail["progress"]["pairs_complete"] == 2
    closed = admin_client.post(f"/api/batches/{batch_id}/close/", {}, format="json")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert BatchEvent.objects.filter(batch_id=batch_id, kind="batch_closed").count() == 1
    assert admin_client.post(f"/api/batches/{batch_id}/close/").status_code == 409


def test_bad_judgment_input_is_400_with_a_message(admin_client, physician_client):
    create_open_batch(admin_client)
    aid = physician_client.get("/api/next/").json()["assignment_id"]
    url = f"/api/assignments/{aid}/judgment/"
    cases = [
        ({"preference": "A>B", "idempotency_key": "x"}, "preference"),
        ({"preference": "1>2"}, "idempotency_key"),
        ({"preference": "1>2", "idempotency_key": "x", "criteria": {"bedside_manner": "1>2"}}, "Unknown rubric criterion"),
        ({"preference": "1>2", "idempotency_key": "x", "flags": {"3": ["hallucination"]}}, "slot must be 1 or 2"),
        ({"preference": "1>2", "idempotency_key": "x", "flags": {"1": ["typo"]}}, "flags"),
        ({"preference": "1>2", "idempotency_key": "x", "error_spans": [{"response": 1, "start": 5, "end": 2, "type": "omission"}]}, "offsets"),
        ({"preference": "1>2", "idempotency_key": "x", "time_spent_ms": -5}, "time_spent_ms"),
    ]
    for payload, needle in cases:
        resp = physician_client.post(url, payload, format="json")
        assert resp.status_code == 400, (payload, resp.content)
        assert needle in json.dumps(resp.json()), (needle, resp.json())
    assert Judgment.objects.count() == 0


def test_unknown_specialty_is_400(admin_client):
    resp = admin_client.post("/api/batches/", {"name": "x", "specialty": "Astrology"}, format="json")
    assert resp.status_code == 400 and "Unknown specialty" in resp.json()["detail"]


def test_state_machine_conflicts(admin_client, admin_user, specialty):
    batch = factories.BatchFactory(specialty=specialty)
    assert admin_client.post(f"/api/batches/{batch.pk}/open/").status_code == 409  # no pairs yet
    assert admin_client.post(f"/api/batches/{batch.pk}/close/").status_code == 409  # draft -> closed
    factories.make_pairs(batch, 1)
    assert admin_client.post(f"/api/batches/{batch.pk}/open/").status_code == 200
    resp = admin_client.post(f"/api/batches/{batch.pk}/close/")
    assert resp.status_code == 409 and resp.json()["pairs_short"] == 1
    resp = admin_client.post(f"/api/batches/{batch.pk}/close/", {"force": True}, format="json")
    assert resp.status_code == 200 and resp.json()["pairs_short_at_close"] == 1
    actions = list(AuditEvent.objects.filter(object_type="batch", object_id=str(batch.pk)).values_list("action", flat=True))
    assert {"batch.open", "batch.closed"} <= set(actions)
    assert admin_client.get("/api/batches/999999/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_closes_fire_one_event(specialty):
    admin = factories.admin("closer")
    batch = factories.BatchFactory(specialty=specialty, state="open")
    results = []
    barrier = threading.Barrier(4)

    def close():
        barrier.wait()
        try:
            batch_close(batch_id=batch.pk, actor=admin, force=True)
            results.append("ok")
        except Exception as exc:
            results.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=close) for _ in range(4)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert sorted(results) == ["InvalidTransition"] * 3 + ["ok"]
    assert BatchEvent.objects.filter(batch=batch).count() == 1


ADMIN_ONLY = [
    ("get", "/api/batches/"), ("post", "/api/batches/"), ("get", "/api/batches/{batch}/"),
    ("post", "/api/batches/{batch}/pairs/"), ("post", "/api/batches/{batch}/open/"), ("post", "/api/batches/{batch}/close/"),
    ("get", "/api/raters/"), ("post", "/api/raters/"), ("post", "/api/raters/{user}/active/"), ("get", "/api/audit/"),
]
PHYSICIAN_ONLY = [("get", "/api/next/"), ("post", "/api/assignments/1/judgment/"), ("post", "/api/assignments/1/skip/")]


@pytest.mark.parametrize("method, url", ADMIN_ONLY + PHYSICIAN_ONLY)
def test_anonymous_is_refused_everywhere(anon_client, specialty, method, url):
    batch = factories.BatchFactory(specialty=specialty)
    resp = getattr(anon_client, method)(url.format(batch=batch.pk, user=1))
    assert resp.status_code in (401, 403)


@pytest.mark.parametrize("method, url", ADMIN_ONLY)
def test_physicians_cannot_reach_admin_endpoints(physician_client, physician, specialty, method, url):
    batch = factories.BatchFactory(specialty=specialty)
    resp = getattr(physician_client, method)(url.format(batch=batch.pk, user=physician.pk), {}, format="json")
    assert resp.status_code == 403


@pytest.mark.parametrize("method, url", PHYSICIAN_ONLY)
def test_admins_do_not_judge(admin_client, method, url):
    assert getattr(admin_client, method)(url, {}, format="json").status_code == 403


def test_physician_sees_only_own_judgments(specialty):
    batch, pairs, raters = factories.judged_batch(n_pairs=2, n_raters=2, state="open")
    mine = client_for(raters[0]).get("/api/judgments/").json()
    assert mine["count"] == 2 and {r["rater"] for r in mine["results"]} == {raters[0].username}
    # another rater's assignment is invisible
    other_assignment = Judgment.objects.filter(rater=raters[1]).first().assignment_id
    assert client_for(raters[0]).get(f"/api/assignments/{other_assignment}/").status_code == 404
    admin = factories.admin("boss")
    assert client_for(admin).get("/api/judgments/").json()["count"] == 4
    assert client_for(admin).get(f"/api/judgments/?batch={batch.pk}").json()["count"] == 4
    # A rater's own leases, newest first, a page at a time like every list.
    leases = client_for(raters[0]).get("/api/assignments/?limit=1").json()
    assert leases["count"] == 2 and len(leases["results"]) == 1 and leases["next"]
    assert leases["results"][0]["id"] == max(Judgment.objects.filter(rater=raters[0]).values_list("assignment_id", flat=True))
    assert other_assignment not in {a["id"] for a in client_for(raters[0]).get("/api/assignments/").json()["results"]}


def test_rater_management_api(admin_client):
    resp = admin_client.post("/api/raters/", {"username": "dr_new", "password": "long-enough-1", "specialty": "Geriatrics"}, format="json")
    assert resp.status_code == 201 and resp.json()["specialty_created"] is True
    user_id = resp.json()["id"]
    assert admin_client.post("/api/raters/", {"username": "dr_new", "password": "long-enough-1", "specialty": "Geriatrics"}, format="json").status_code == 409
    assert admin_client.post("/api/raters/", {"username": "x", "password": "short", "specialty": "G"}, format="json").status_code == 400
    resp = admin_client.post(f"/api/raters/{user_id}/active/", {"is_active": False}, format="json")
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    token_client = APIClient()
    from django.contrib.auth import get_user_model

    token_client.force_authenticate(get_user_model().objects.get(pk=user_id))
    assert token_client.get("/api/next/").status_code == 403  # deactivated raters get no work
    audit = admin_client.get("/api/audit/?action=rater.").json()
    assert {e["action"] for e in audit["results"]} >= {"rater.created", "rater.deactivated"}


def test_schema_and_docs_are_served(admin_client):
    assert admin_client.get("/api/schema/").status_code == 200
    assert admin_client.get("/api/docs/").status_code == 200


def test_audit_trail_is_append_only_in_postgres(admin_user):
    from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the database-level guard is PostgreSQL's (CI runs on PostgreSQL)")
    from annotation.audit import audit_record

    event = audit_record(actor=admin_user, action="test.event", obj=admin_user.profile)
    for attempt in (lambda: AuditEvent.objects.filter(pk=event.pk).update(action="tampered"),
                    lambda: AuditEvent.objects.filter(pk=event.pk).delete()):
        with pytest.raises((InternalError, IntegrityError, ProgrammingError), match="append-only"):
            with transaction.atomic():
                attempt()
    assert AuditEvent.objects.get(pk=event.pk).action == "test.event"


def test_bad_query_ids_are_400(admin_client, physician_client):
    assert physician_client.get("/api/next/?batch=abc").status_code == 400
    resp = admin_client.get("/api/judgments/?batch=1;drop")
    assert resp.status_code == 400 and "batch must be an id" in resp.json()["detail"]
    assert admin_client.get("/api/audit/?batch=x").status_code == 400


def test_late_submit_on_a_reclaimed_lease_is_a_409_that_says_what_to_do(admin_client, physician_client, physician):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Assignment

    batch_id = create_open_batch(admin_client)
    Batch.objects.filter(pk=batch_id).update(calibration_rate=0)
    first = physician_client.get(f"/api/next/?batch={batch_id}").json()
    Assignment.objects.filter(pk=first["assignment_id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    payload = {"preference": "1>2", "idempotency_key": "late-1", "rationale": "Response 2 misses the red flag."}
    late = physician_client.post(f"/api/assignments/{first['assignment_id']}/judgment/", payload, format="json")
    assert late.status_code == 409
    body = late.json()
    assert body["code"] == "lease_expired" and body["stored"] is False
    assert body["assignment_id"] == first["assignment_id"] and body["pair_id"] == first["pair_id"]
    assert "Nothing was stored" in body["detail"] and "pair" in body["next"]
    assert not Judgment.objects.exists()

    again = physician_client.get(body["next"]).json()
    assert again["pair_id"] == first["pair_id"] and again["assignment_id"] != first["assignment_id"]
    assert again["prompt"] == first["prompt"]
    # The old id stays refused; the same answer (new key) is stored once on the new lease.
    assert physician_client.post(f"/api/assignments/{first['assignment_id']}/judgment/", payload,
                                 format="json").status_code == 409
    resubmit = physician_client.post(f"/api/assignments/{again['assignment_id']}/judgment/",
                                     {**payload, "idempotency_key": "late-2"}, format="json")
    assert resubmit.status_code == 201 and resubmit.json()["assignment_id"] == again["assignment_id"]
