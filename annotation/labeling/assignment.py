"""The judging hot path: handing a physician their next pair, and recording what they said.

Designed for many raters at once on 2 cores: a constant, small number of queries per call,
every filter backed by an index, and no counting of assignments at request time (the
pair's `open_slots` / `judgments_count` counters are kept inside the transactions below).

Lock order, to stay free of deadlocks: leasing locks a pair row, then writes only the
caller's own assignment row; submitting and reclaiming lock assignment rows, then pairs."""

import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotation.labeling import hotsql
from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, Forbidden, LeaseExpired, NotFound
from annotation.rules import PREFERENCE_BY_VALUE, PREFERENCES, response_vetoed
from annotation.models import (
    ERROR_SPAN_TYPES,
    FLAG_CHOICES,
    Assignment,
    AssignmentStatus,
    BatchState,
    Completion,
    HarmSeverity,
    Judgment,
    Pair,
    Prompt,
    RationalePolicy,
    Role,
)

# Display terms (slot 1 = the response shown first) -> strength towards slot 2.
DISPLAY_PREFERENCES = {p.display: p.value for p in PREFERENCES}
CANONICAL_LABELS = {p.value: p.symbol for p in PREFERENCES}


def preference_to_canonical(display: str, *, a_shown_first: bool) -> int:
    """A display choice (1>>2 ... 2>>1, annotation.rules) as seen on screen -> the stored -2..2 scale where negative favours A."""
    if display not in DISPLAY_PREFERENCES:
        raise DomainError(f"preference must be one of {', '.join(DISPLAY_PREFERENCES)}; got {display!r}.")
    towards_slot_2 = DISPLAY_PREFERENCES[display]
    return towards_slot_2 if a_shown_first else -towards_slot_2


def preference_to_display(canonical: int, *, a_shown_first: bool) -> str:
    towards_slot_2 = canonical if a_shown_first else -canonical
    return {v: k for k, v in DISPLAY_PREFERENCES.items()}[towards_slot_2]


def slot_to_side(slot, *, a_shown_first: bool) -> str:
    """Response slot 1/2 on screen -> canonical side 'a'/'b'."""
    if str(slot) not in {"1", "2"}:
        raise DomainError(f"Response slot must be 1 or 2; got {slot!r}.")
    first = str(slot) == "1"
    return "a" if first == a_shown_first else "b"


def _require_physician(rater) -> None:
    profile = getattr(rater, "profile", None)
    if profile is None or profile.role != Role.PHYSICIAN:
        raise Forbidden("Only physicians judge pairs.")
    if not profile.is_active:
        raise Forbidden("Your rater account is deactivated; ask an admin to reactivate it.")


# ---------------------------------------------------------------- leases

_last_reclaim = 0.0
RECLAIM_EVERY_SECONDS = 5.0


def leases_reclaim(*, now=None) -> int:
    """Expire leases past their time and give their slots back to the pool. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        stale = list(
            Assignment.objects.filter(status=AssignmentStatus.LEASED, expires_at__lte=now)
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", "pair_id")
        )
        if not stale:
            return 0
        Assignment.objects.filter(id__in=[a for a, _ in stale]).update(status=AssignmentStatus.EXPIRED)
        freed: dict[int, int] = {}
        for _, pair_id in stale:
            freed[pair_id] = freed.get(pair_id, 0) + 1
        for pair_id in sorted(freed):
            hotsql.pair_slots_add(pair_id=pair_id, delta=freed[pair_id])
    return len(stale)


def _maybe_reclaim(now) -> None:
    # The reclaim query is cheap but not free; once every few seconds per process is plenty
    # for leases measured in minutes.
    global _last_reclaim
    if time.monotonic() - _last_reclaim >= RECLAIM_EVERY_SECONDS:
        _last_reclaim = time.monotonic()
        leases_reclaim(now=now)


def pair_lease_next(*, rater, batch_id: int | None = None, rng: random.Random | None = None,
                    prefer_pair_id: int | None = None) -> Assignment | None:
    """Give `rater` one pair to judge, or None when nothing is left for them.

    Returns their unexpired lease if they hold one (a reload must not burn a second pair).
    Otherwise takes a pair from an open batch of their specialty that they have not judged
    or skipped and that has a free slot, locking it with SKIP LOCKED so concurrent raters
    spread over different pairs and a pair is never leased beyond raters_per_pair.

    `prefer_pair_id` is tried first: after a late submit on an expired lease the page asks for the
    same pair again, so the physician can resubmit what they wrote. Taking a pair back is always a
    new assignment (a new id), never the expired one revived."""
    _require_physician(rater)
    now = timezone.now()
    held_id = hotsql.held_lease_id(rater_id=rater.pk, now=now, batch_id=batch_id)
    if held_id is not None:
        return Assignment.objects.select_related(
            "pair__prompt", "pair__completion_a", "pair__completion_b", "batch").get(pk=held_id)

    if prefer_pair_id is not None:
        leases_reclaim(now=now)  # the preferred pair may sit on this rater's own lease that just ran out
    else:
        _maybe_reclaim(now)
    batches = hotsql.open_batches(specialty_id=rater.profile.specialty_id, batch_id=batch_id)
    if not batches:
        return None
    batch_ids = sorted(batches)
    rng = rng or random
    calibration_rate = max(b.calibration_rate for b in batches.values())
    # Calibration items are mixed in at the batch's rate, and served once regular work runs out.
    order = [True, False] if rng.random() < calibration_rate else [False, True]
    if prefer_pair_id is not None:
        for calibration in order:
            assignment = _lease_first_free(batch_ids=batch_ids, batches=batches, rater=rater, calibration=calibration,
                                           now=now, rng=rng, only_pair_id=prefer_pair_id)
            if assignment is not None:
                return assignment
    for calibration in order:
        assignment = _lease_first_free(batch_ids=batch_ids, batches=batches, rater=rater, calibration=calibration, now=now, rng=rng)
        if assignment is not None:
            return assignment
    return None


_CANDIDATE_SQL = """
SELECT p.id, p.batch_id, pr.text, ca.text, cb.text,
       (SELECT x.a_shown_first FROM annotation_assignment x
        WHERE x.pair_id = p.id AND x.rater_id = %(rater)s AND x.status = 'expired'
        ORDER BY x.id DESC LIMIT 1) AS earlier_order
FROM annotation_pair p
JOIN annotation_prompt pr ON pr.id = p.prompt_id
JOIN annotation_completion ca ON ca.id = p.completion_a_id
JOIN annotation_completion cb ON cb.id = p.completion_b_id
WHERE p.batch_id IN ({batches}) AND {kind}{only}
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment y
                  WHERE y.pair_id = p.id AND y.rater_id = %(rater)s AND y.status <> 'expired')
ORDER BY {order}
LIMIT 1{lock}
"""
_REGULAR = ("p.gold_preference IS NULL AND p.open_slots > 0", "p.open_slots, p.id")
_CALIBRATION = ("p.gold_preference IS NOT NULL", "p.id")


def _lease_first_free(*, batch_ids, batches, rater, calibration: bool, now, rng,
                      only_pair_id: int | None = None) -> Assignment | None:
    """Lock the first free pair (SKIP LOCKED on PostgreSQL; SQLite's IMMEDIATE transactions
    serialise writers instead) and lease it. Hand-written SQL: this runs on every request of
    the hot path, and building the equivalent ORM query cost more than running it."""
    kind, order = _CALIBRATION if calibration else _REGULAR
    lock = " FOR UPDATE OF p SKIP LOCKED" if connection.vendor == "postgresql" else ""
    only = "" if only_pair_id is None else f" AND p.id = {int(only_pair_id)}"
    sql = _CANDIDATE_SQL.format(batches=", ".join(str(int(b)) for b in batch_ids), kind=kind, order=order, lock=lock,
                                only=only)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, {"rater": rater.pk})
            row = cursor.fetchone()
        if row is None:
            return None
        pair_id, pair_batch_id, prompt_text, a_text, b_text, earlier_order = row
        batch = batches[pair_batch_id]
        # Always a new row, also when this rater's earlier lease on the pair expired: the old id
        # stays `expired`, so a late submit on it is refused instead of landing on this lease. The
        # display order stays what they saw before, so the answer they kept means the same thing.
        a_shown_first = rng.random() < 0.5 if earlier_order is None else bool(earlier_order)
        assignment = Assignment.objects.create(
            pair_id=pair_id, rater=rater, batch=batch, status=AssignmentStatus.LEASED, a_shown_first=a_shown_first,
            is_calibration=calibration, leased_at=now, expires_at=now + timedelta(seconds=batch.lease_seconds),
        )
        if not calibration:
            hotsql.pair_slots_add(pair_id=pair_id, delta=-1)
    # Read-only stand-ins carrying what the response needs, without another query.
    prompt = Prompt(text=prompt_text)
    assignment.pair = Pair(id=pair_id, batch_id=pair_batch_id, prompt=prompt,
                           completion_a=Completion(text=a_text), completion_b=Completion(text=b_text))
    return assignment


@transaction.atomic
def assignment_skip(*, assignment_id: int, rater, reason: str) -> Assignment:
    """A physician passes on a pair (e.g. outside their competence). The slot goes back to the pool."""
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("Say why you skip this pair (reason is required).")
    assignment, _ = _own_assignment_locked(assignment_id=assignment_id, rater=rater)
    if assignment.status != AssignmentStatus.LEASED:
        raise Conflict(f"This assignment is {assignment.status}; only a leased pair can be skipped.")
    assignment.status = AssignmentStatus.SKIPPED
    assignment.skip_reason = reason[:500]
    assignment.finished_at = timezone.now()
    assignment.save(update_fields=["status", "skip_reason", "finished_at"])
    if not assignment.is_calibration:
        hotsql.pair_slots_add(pair_id=assignment.pair_id, delta=1)
    audit_record(actor=rater, action="assignment.skipped", obj=assignment, batch=assignment.batch_id, data={"reason": reason[:500]})
    return assignment


def _own_assignment_locked(*, assignment_id: int, rater, now=None) -> tuple[Assignment, bool]:
    """The caller's assignment (row-locked, with its batch) and whether its lease still runs."""
    found = hotsql.assignment_locked(assignment_id=assignment_id, rater_id=rater.pk, now=now or timezone.now())
    if found is None:
        # Someone else's assignment looks exactly like a missing one: no existence leak.
        raise NotFound(f"Assignment {assignment_id} does not exist or is not yours.")
    return found


# ---------------------------------------------------------------- judgments

@dataclass
class JudgmentInput:
    """A judgment in display terms, as the physician saw the pair (slot 1 / slot 2)."""

    preference: str
    idempotency_key: str
    criteria: dict | None = None
    flags: dict | None = None
    unsafe: dict | None = None
    both_unacceptable: bool = False
    harm_severity: str = HarmSeverity.NONE
    error_spans: list | None = None
    rationale: str = ""
    time_spent_ms: int | None = None


def _to_canonical(data: JudgmentInput, *, assignment: Assignment) -> dict:
    """Validate every field and translate slots 1/2 into canonical sides a/b."""
    shown_a = assignment.a_shown_first
    batch = assignment.batch
    key = (data.idempotency_key or "").strip()
    if not key or len(key) > 100:
        raise DomainError("idempotency_key is required (1-100 characters), one per judgment attempt.")
    preference = preference_to_canonical(data.preference, a_shown_first=shown_a)

    rubric_keys = {c["key"] for c in batch.rubric}
    criteria = {}
    for name, value in (data.criteria or {}).items():
        if name not in rubric_keys:
            raise DomainError(f"Unknown rubric criterion {name!r}; this batch uses {', '.join(sorted(rubric_keys))}.")
        if value in (None, ""):
            continue
        criteria[name] = preference_to_canonical(str(value), a_shown_first=shown_a)

    flags = {"a": [], "b": []}
    for slot, names in (data.flags or {}).items():
        side = slot_to_side(slot, a_shown_first=shown_a)
        if not isinstance(names, list) or any(n not in FLAG_CHOICES for n in names):
            raise DomainError(f"flags[{slot}] must be a list drawn from {', '.join(FLAG_CHOICES)}.")
        flags[side] = sorted(set(names))

    unsafe = {"a": False, "b": False}
    for slot, value in (data.unsafe or {}).items():
        unsafe[slot_to_side(slot, a_shown_first=shown_a)] = bool(value)

    if data.harm_severity not in HarmSeverity.values:
        raise DomainError(f"harm_severity must be one of {', '.join(HarmSeverity.values)}.")
    vetoed = any(response_vetoed(marked_unsafe=unsafe[side], both_unacceptable=data.both_unacceptable) for side in "ab")
    if vetoed and data.harm_severity == HarmSeverity.NONE:
        raise DomainError("A response marked unsafe or unacceptable needs a harm severity (mild, moderate or severe).")

    spans = []
    if data.error_spans:  # the texts are needed only to check span offsets
        pair = Pair.objects.select_related("completion_a", "completion_b").get(pk=assignment.pair_id)
        texts = {"a": pair.completion_a.text, "b": pair.completion_b.text}
    for i, span in enumerate(data.error_spans or [], 1):
        if not isinstance(span, dict):
            raise DomainError(f"error_spans[{i}] must be an object with response, start, end, type.")
        side = slot_to_side(span.get("response"), a_shown_first=shown_a)
        start, end = span.get("start"), span.get("end")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(texts[side]):
            raise DomainError(f"error_spans[{i}]: start/end must be character offsets inside the response (0 <= start < end <= {len(texts[side])}).")
        if span.get("type") not in ERROR_SPAN_TYPES:
            raise DomainError(f"error_spans[{i}].type must be one of {', '.join(ERROR_SPAN_TYPES)}.")
        spans.append({"response": side, "start": start, "end": end, "type": span["type"], "text": texts[side][start:end]})

    rationale = (data.rationale or "").strip()
    needs_rationale = batch.rationale_policy == RationalePolicy.ALWAYS or (
        batch.rationale_policy == RationalePolicy.TIES_AND_STRONG and PREFERENCE_BY_VALUE[preference].strong_or_tie
    )
    if needs_rationale and not rationale:
        raise DomainError("This batch asks for a rationale for this judgment (ties and strong preferences need one).")
    if len(rationale) > 10_000:
        raise DomainError("Rationale is longer than 10,000 characters.")
    time_spent = data.time_spent_ms
    if time_spent is not None and (not isinstance(time_spent, int) or time_spent < 0):
        raise DomainError("time_spent_ms must be a non-negative integer.")
    return dict(
        preference=preference, criteria=criteria, flags=flags, a_unsafe=unsafe["a"], b_unsafe=unsafe["b"],
        both_unacceptable=bool(data.both_unacceptable), harm_severity=data.harm_severity, error_spans=spans,
        rationale=rationale, time_spent_ms=time_spent, idempotency_key=key,
    )


def judgment_submit(*, assignment_id: int, rater, data: JudgmentInput) -> tuple[Judgment, bool]:
    """Record a judgment. Returns (judgment, created).

    The same idempotency key twice returns the first judgment (created=False): a double click
    or a retried request after a dropped connection stores one judgment. A new key on an
    already-submitted assignment is a correction: a new revision, the old one kept as history."""
    _require_physician(rater)
    key = (data.idempotency_key or "").strip()
    replay = _judgment_replay(rater=rater, key=key, assignment_id=assignment_id)
    if replay is not None:
        return replay, False
    try:
        with transaction.atomic():
            return _judgment_write(assignment_id=assignment_id, rater=rater, data=data), True
    except LeaseExpired:
        # Give the slot back now rather than at the next periodic reclaim, so the same pair can be
        # leased again at once (to this physician, who still has their answer on the page).
        leases_reclaim()
        raise
    except IntegrityError:
        # A concurrent request with the same key won the race; answer with its judgment.
        replay = _judgment_replay(rater=rater, key=key, assignment_id=assignment_id)
        if replay is None:
            raise
        return replay, False


def _judgment_replay(*, rater, key: str, assignment_id: int) -> Judgment | None:
    if not key:
        return None
    found = hotsql.judgment_by_key(rater_id=rater.pk, key=key)
    if found is None:
        return None
    if found[1] != assignment_id:
        raise Conflict("This idempotency_key was already used for another assignment; send a fresh key.")
    return Judgment.objects.select_related("rater").get(pk=found[0])


def _judgment_write(*, assignment_id: int, rater, data: JudgmentInput) -> Judgment:
    now = timezone.now()
    assignment, lease_valid = _own_assignment_locked(assignment_id=assignment_id, rater=rater, now=now)
    if assignment.batch.state != BatchState.OPEN:
        raise Conflict(f"Batch {assignment.batch.name!r} is {assignment.batch.state}; it takes no more judgments.")
    previous = None
    if assignment.status == AssignmentStatus.SUBMITTED:
        previous = Judgment.objects.select_for_update().get(assignment=assignment, is_current=True)
    elif assignment.status == AssignmentStatus.SKIPPED:
        raise Conflict("You skipped this pair; it cannot be judged now.")
    elif assignment.status == AssignmentStatus.EXPIRED or not lease_valid:
        raise LeaseExpired(
            "Nothing was stored: your hold on this pair expired before you submitted, and the pair went back to the "
            "pool. Keep your answer: ask for the next pair with this pair_id (GET /api/next/?pair=ID) and, if it "
            "comes back to you, submit the same answer on the new assignment; otherwise copy it.",
            extra={"assignment_id": assignment.pk, "pair_id": assignment.pair_id, "batch_id": assignment.batch_id,
                   "stored": False, "next": f"/api/next/?batch={assignment.batch_id}&pair={assignment.pair_id}"},
        )
    fields = _to_canonical(data, assignment=assignment)
    if previous is not None:
        Judgment.objects.filter(pk=previous.pk).update(is_current=False)
    judgment = Judgment.objects.create(
        assignment=assignment, pair_id=assignment.pair_id, batch_id=assignment.batch_id, rater=rater,
        a_shown_first=assignment.a_shown_first, revision=(previous.revision + 1) if previous else 1,
        supersedes=previous, **fields,
    )
    pair_judgments = 0
    if previous is None:
        assignment.status = AssignmentStatus.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        pair_judgments = hotsql.pair_judged(pair_id=assignment.pair_id)
    audit_record(
        actor=rater, action="judgment.corrected" if previous else "judgment.submitted", obj=judgment,
        batch=assignment.batch_id, data={"pair": assignment.pair_id, "preference": judgment.preference, "revision": judgment.revision},
    )
    # Last: the batch row's counters and data_version in one UPDATE (every judgment contends for it).
    _counters_keep(judgment=judgment, previous=previous, is_calibration=assignment.is_calibration, pair_judgments=pair_judgments)
    return judgment


def _counters_keep(*, judgment: Judgment, previous: Judgment | None, is_calibration: bool, pair_judgments: int) -> None:
    """The rater's and the batch's counters (Profile, Batch) for one judgment row; the batch row
    last, as every judgment of the batch contends for it."""
    old_ms = previous.time_spent_ms if previous is not None else None
    new_ms = judgment.time_spent_ms
    hotsql.rater_judged(
        rater_id=judgment.rater_id, added=0 if previous else 1,
        time_ms_delta=(new_ms or 0) - (old_ms or 0), timed_delta=(new_ms is not None) - (old_ms is not None),
    )
    hotsql.batch_judged(batch_id=judgment.batch_id, first=previous is None, regular=not is_calibration,
                        pair_judgments=pair_judgments)
