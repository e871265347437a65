"""The batch and rater counters (Batch.pairs_count ..., Profile.judgments_count ...) are kept by
the services in the writing transaction and equal what counting the rows gives, after a
mixed workload of imports, leases, skips, expired leases, judgments and corrections."""

import json
import random
from datetime import timedelta

from django.utils import timezone

from annotation.labeling import assignment as hot
from annotation.labeling.importing import pairs_import
from annotation.labeling.services import batch_counters_recount, batch_open
from annotation.models import Assignment, AssignmentStatus, Batch, Profile
from tests import factories

BATCH_FIELDS = ("pairs_count", "calibration_count", "judgments_done", "pairs_complete", "judgment_rows")
PROFILE_FIELDS = ("judgments_count", "time_spent_ms_total", "time_spent_n")


def counters(model, fields, **filters) -> dict:
    return {row[0]: row[1:] for row in model.objects.filter(**filters).order_by("pk").values_list("pk", *fields)}


def lines(n: int, *, start: int = 0, gold_every: int = 0) -> list[str]:
    out = []
    for i in range(start, start + n):
        line = {"prompt": f"Case {i}: chest pain?", "response_a": f"Call 911 ({i}).", "response_b": f"Rest ({i})."}
        if gold_every and i % gold_every == 0:
            line["gold_preference"] = "A>B"
        out.append(json.dumps(line))
    return out


def test_counters_equal_row_counts_after_a_mixed_workload(db, specialty):
    admin = factories.admin("boss")
    raters = [factories.physician(f"doc{i}", specialty) for i in range(4)]
    batch = factories.BatchFactory(name="Mixed", specialty=specialty, raters_per_pair=2, calibration_rate=0.2)
    other = factories.BatchFactory(name="Untouched", specialty=specialty, raters_per_pair=3)
    pairs_import(batch=batch, lines=lines(12, gold_every=5), actor=admin)
    pairs_import(batch=batch, lines=lines(6, start=100), actor=admin)  # a second import adds to the counters
    batch_open(batch_id=batch.pk, actor=admin)

    rng = random.Random(7)
    for step in range(60):
        rater = raters[step % len(raters)]
        leased = hot.pair_lease_next(rater=rater, rng=rng)
        if leased is None:
            continue
        roll = rng.random()
        if roll < 0.15:
            hot.assignment_skip(assignment_id=leased.pk, rater=rater, reason="outside my competence")
        elif roll < 0.25:  # the lease runs out and is reclaimed
            Assignment.objects.filter(pk=leased.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
            hot.leases_reclaim()
        else:
            data = hot.JudgmentInput(preference=rng.choice(["1>2", "=", "2>>1"]), idempotency_key=f"k{step}",
                                     time_spent_ms=rng.choice([None, 12_000, 40_000]), rationale="why")
            judgment, _ = hot.judgment_submit(assignment_id=leased.pk, rater=rater, data=data)
            if roll > 0.85:  # a correction: a new revision, the rater's count of current judgments unchanged
                fix = hot.JudgmentInput(preference="1>>2", idempotency_key=f"fix{step}", time_spent_ms=rng.choice([None, 5_000]),
                                        rationale="on reflection")
                hot.judgment_submit(assignment_id=leased.pk, rater=rater, data=fix)

    assert Assignment.objects.filter(status=AssignmentStatus.SUBMITTED).exists()
    kept_batches = counters(Batch, BATCH_FIELDS)
    kept_raters = counters(Profile, PROFILE_FIELDS)
    batch_counters_recount()
    assert counters(Batch, BATCH_FIELDS) == kept_batches
    assert counters(Profile, PROFILE_FIELDS) == kept_raters
    mixed = Batch.objects.get(pk=batch.pk)
    assert (mixed.pairs_count, mixed.calibration_count) == (15, 3)
    assert mixed.judgment_rows > mixed.judgments_done > 0  # corrections and calibration judgments count as rows only
    assert counters(Batch, BATCH_FIELDS, pk=other.pk)[other.pk] == (0, 0, 0, 0, 0)


def test_progress_and_pairs_short_come_from_the_counters(admin_client, db, specialty):
    batch = factories.BatchFactory(name="Counted", specialty=specialty, raters_per_pair=2)
    Batch.objects.filter(pk=batch.pk).update(pairs_count=10, calibration_count=2, judgments_done=7, pairs_complete=3)
    progress = admin_client.get(f"/api/batches/{batch.pk}/").json()["progress"]
    assert progress == {"pairs": 10, "calibration_pairs": 2, "pairs_complete": 3, "judgments_done": 7,
                        "judgments_needed": 20, "percent": 35.0, "active_raters": 0}
    listed = {b["id"]: b["progress"] for b in admin_client.get("/api/batches/").json()}
    assert listed[batch.pk] == progress
