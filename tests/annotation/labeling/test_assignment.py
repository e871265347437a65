import random
import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from annotation.labeling.assignment import (
    JudgmentInput,
    assignment_skip,
    judgment_submit,
    leases_reclaim,
    pair_lease_next,
    preference_to_canonical,
)
from annotation.errors import Conflict, Forbidden, LeaseExpired, NotFound
from annotation.models import Assignment, AssignmentStatus, AuditEvent, Judgment, Pair
from tests import factories


@pytest.fixture
def open_batch(db, specialty):
    batch = factories.BatchFactory(name="open", specialty=specialty, raters_per_pair=2, state="open", calibration_rate=0.0)
    factories.make_pairs(batch, 3)
    return batch


def judge(assignment, rater, preference="1>2", key=None, **kw):
    return judgment_submit(assignment_id=assignment.pk, rater=rater,
                           data=JudgmentInput(preference=preference, idempotency_key=key or f"k-{assignment.pk}", **kw))


@pytest.mark.parametrize("display, a_first, canonical", [
    ("1>>2", True, -2), ("1>>2", False, 2), ("1>2", True, -1), ("1>2", False, 1),
    ("=", True, 0), ("=", False, 0), ("2>1", True, 1), ("2>1", False, -1), ("2>>1", True, 2), ("2>>1", False, -2),
])
def test_display_preference_maps_to_canonical(display, a_first, canonical):
    assert preference_to_canonical(display, a_shown_first=a_first) == canonical


def test_next_leases_a_pair_and_returns_the_same_lease_on_reload(open_batch, physician):
    first = pair_lease_next(rater=physician)
    assert first is not None and first.status == AssignmentStatus.LEASED
    assert pair_lease_next(rater=physician).pk == first.pk
    assert Pair.objects.get(pk=first.pair_id).open_slots == 1


def test_rater_never_gets_a_pair_twice_and_slots_are_respected(open_batch, specialty):
    raters = [factories.physician(f"d{i}", specialty) for i in range(3)]
    seen = {r.pk: set() for r in raters}
    for _ in range(3):
        for rater in raters:
            a = pair_lease_next(rater=rater)
            if a is None:
                continue
            assert a.pair_id not in seen[rater.pk]
            seen[rater.pk].add(a.pair_id)
            judge(a, rater)
    # 3 pairs x 2 raters per pair = 6 judgments; the third rater is left over
    assert Judgment.objects.count() == 6
    for pair in Pair.objects.all():
        assert pair.judgments_count == 2 and pair.open_slots == 0
    assert all(pair_lease_next(rater=r) is None for r in raters)


def test_other_specialties_and_closed_batches_are_not_served(open_batch):
    other = factories.physician("psych", factories.SpecialtyFactory(name="Psychiatry", slug="psychiatry"))
    assert pair_lease_next(rater=other) is None


def test_admins_do_not_judge(open_batch, admin_user):
    with pytest.raises(Forbidden):
        pair_lease_next(rater=admin_user)


def test_judgment_is_stored_relative_to_the_canonical_pair(open_batch, physician):
    a = pair_lease_next(rater=physician)
    judgment, created = judge(a, physician, "1>>2", criteria={"accuracy": "1>2"}, flags={"2": ["hallucination"]},
                              unsafe={"2": True}, harm_severity="moderate")
    assert created
    if a.a_shown_first:
        assert judgment.preference == -2 and judgment.criteria == {"accuracy": -1}
        assert judgment.flags == {"a": [], "b": ["hallucination"]} and judgment.b_unsafe and not judgment.a_unsafe
    else:
        assert judgment.preference == 2 and judgment.criteria == {"accuracy": 1}
        assert judgment.flags == {"a": ["hallucination"], "b": []} and judgment.a_unsafe and not judgment.b_unsafe
    assert AuditEvent.objects.filter(action="judgment.submitted", object_id=str(judgment.pk)).exists()


def test_same_idempotency_key_stores_one_judgment(open_batch, physician):
    a = pair_lease_next(rater=physician)
    j1, created1 = judge(a, physician, key="same")
    j2, created2 = judge(a, physician, key="same")
    assert created1 and not created2 and j1.pk == j2.pk
    assert Judgment.objects.count() == 1 and Pair.objects.get(pk=a.pair_id).judgments_count == 1


def test_key_reused_on_another_assignment_is_refused(open_batch, physician):
    a = pair_lease_next(rater=physician)
    judge(a, physician, key="k")
    b = pair_lease_next(rater=physician)
    with pytest.raises(Conflict, match="another assignment"):
        judge(b, physician, key="k")


def test_correction_creates_a_revision_and_keeps_history(open_batch, physician):
    a = pair_lease_next(rater=physician)
    first, _ = judge(a, physician, "1>2", key="first")
    second, created = judge(a, physician, "2>1", key="second")
    assert created and second.revision == 2 and second.supersedes_id == first.pk
    first.refresh_from_db()
    assert not first.is_current and second.is_current
    assert Pair.objects.get(pk=a.pair_id).judgments_count == 1


def test_expired_lease_is_refused_and_slot_returns(open_batch, physician):
    a = pair_lease_next(rater=physician)
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(LeaseExpired):
        judge(a, physician)
    assert leases_reclaim() == 0  # the refused submit already gave the slot back
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.EXPIRED
    assert Pair.objects.get(pk=a.pair_id).open_slots == 2
    # the same physician may take the pair back, but as a new assignment: the old id stays expired
    again = pair_lease_next(rater=physician, prefer_pair_id=a.pair_id)
    assert again.pair_id == a.pair_id and again.pk != a.pk and again.status == AssignmentStatus.LEASED
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.EXPIRED


def test_reclaimed_lease_never_comes_back_under_the_same_id(open_batch, physician):
    """Whatever the order of leases, every lease of a pair by a physician is a distinct id, and a
    late submit on the expired id is refused without touching the live lease."""
    first = pair_lease_next(rater=physician)
    ids = {first.pk}
    for _ in range(3):
        Assignment.objects.filter(rater=physician, status=AssignmentStatus.LEASED).update(
            expires_at=timezone.now() - timedelta(seconds=1))
        assert leases_reclaim() == 1
        again = pair_lease_next(rater=physician, prefer_pair_id=first.pair_id, rng=random.Random(len(ids)))
        assert again.pair_id == first.pair_id and again.pk not in ids
        assert again.a_shown_first == first.a_shown_first  # the same screen: a kept answer means the same
        ids.add(again.pk)
    with pytest.raises(LeaseExpired) as late:
        judge(first, physician, key="late")
    assert late.value.extra["pair_id"] == first.pair_id and late.value.extra["stored"] is False
    assert Assignment.objects.get(pk=again.pk).status == AssignmentStatus.LEASED
    assert not Judgment.objects.exists()
    # the answer the physician kept is accepted on the new lease
    judgment, created = judge(again, physician, key="resubmitted")
    assert created and judgment.assignment_id == again.pk
    assert Assignment.objects.filter(pair_id=first.pair_id, rater=physician).count() == 4
    assert Pair.objects.get(pk=first.pair_id).open_slots == 1


def test_late_submit_gives_the_slot_back_at_once(open_batch, physician, monkeypatch):
    """A late submit on a lease that no periodic reclaim has seen yet frees the slot at once, so
    the physician can take the same pair back immediately and resubmit."""
    from annotation.labeling import assignment as assignment_module

    monkeypatch.setattr(assignment_module, "_maybe_reclaim", lambda now: None)  # no periodic reclaim
    a = pair_lease_next(rater=physician)
    Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(LeaseExpired):
        judge(a, physician)
    assert Assignment.objects.get(pk=a.pk).status == AssignmentStatus.EXPIRED
    again = pair_lease_next(rater=physician, prefer_pair_id=a.pair_id)
    assert again.pair_id == a.pair_id and again.pk != a.pk


def test_foreign_assignment_looks_missing(open_batch, physician, specialty):
    a = pair_lease_next(rater=physician)
    other = factories.physician("other", specialty)
    with pytest.raises(NotFound):
        judge(a, other)


def test_skip_frees_the_slot_and_needs_a_reason(open_batch, physician):
    a = pair_lease_next(rater=physician)
    with pytest.raises(Exception, match="reason"):
        assignment_skip(assignment_id=a.pk, rater=physician, reason=" ")
    assignment_skip(assignment_id=a.pk, rater=physician, reason="Outside my competence")
    assert Pair.objects.get(pk=a.pair_id).open_slots == 2
    assert pair_lease_next(rater=physician).pair_id != a.pair_id


def test_rationale_policy_and_veto_rules(open_batch, physician):
    open_batch.rationale_policy = "ties_and_strong"
    open_batch.save(update_fields=["rationale_policy"])
    a = pair_lease_next(rater=physician)
    with pytest.raises(Exception, match="rationale"):
        judge(a, physician, "=")
    with pytest.raises(Exception, match="harm severity"):
        judge(a, physician, "1>2", both_unacceptable=True)
    j, _ = judge(a, physician, "1>2", both_unacceptable=True, harm_severity="severe")
    assert j.both_unacceptable


def test_error_spans_are_validated_and_stored_canonically(open_batch, physician):
    a = pair_lease_next(rater=physician)
    shown_first = a.pair.completion_a if a.a_shown_first else a.pair.completion_b
    with pytest.raises(Exception, match="offsets"):
        judge(a, physician, error_spans=[{"response": 1, "start": 0, "end": 10_000, "type": "omission"}])
    j, _ = judge(a, physician, error_spans=[{"response": 1, "start": 0, "end": 5, "type": "dosing_error"}])
    side = "a" if a.a_shown_first else "b"
    assert j.error_spans == [{"response": side, "start": 0, "end": 5, "type": "dosing_error", "text": shown_first.text[:5]}]


def test_calibration_items_are_mixed_in_for_every_rater(db, specialty):
    batch = factories.BatchFactory(name="cal", specialty=specialty, raters_per_pair=1, state="open", calibration_rate=1.0)
    gold = factories.make_pair(batch, "Gold question?", "Right.", "Wrong.", gold=-2)
    factories.make_pairs(batch, 1)
    raters = [factories.physician(f"c{i}", specialty) for i in range(3)]
    for r in raters:
        a = pair_lease_next(rater=r, rng=random.Random(0))
        assert a.pair_id == gold.pk and a.is_calibration
        judge(a, r)
    assert Pair.objects.get(pk=gold.pk).judgments_count == 3  # calibration items ignore the slot limit


@pytest.mark.django_db(transaction=True)
def test_concurrent_raters_never_over_assign(specialty):
    """20 physicians ask for work at the same moment (threads, each with its own DB connection)."""
    batch = factories.BatchFactory(name="race", specialty=specialty, raters_per_pair=3, state="open", calibration_rate=0.0)
    factories.make_pairs(batch, 10)
    raters = [factories.physician(f"race{i}", specialty) for i in range(20)]
    barrier = threading.Barrier(len(raters))
    errors = []

    def work(rater):
        try:
            barrier.wait()
            for _ in range(5):
                a = pair_lease_next(rater=rater)
                if a is None:
                    return
                judge(a, rater, key=f"{rater.pk}-{a.pk}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    per_pair = {p.pk: p for p in Pair.objects.all()}
    for pair_id, pair in per_pair.items():
        n_assign = Assignment.objects.filter(pair_id=pair_id).exclude(status="expired").count()
        assert n_assign <= 3
        assert pair.judgments_count == Judgment.objects.filter(pair_id=pair_id, is_current=True).count() <= 3
        assert pair.open_slots == 3 - n_assign
    assert Judgment.objects.count() == 30  # every slot was filled exactly once
