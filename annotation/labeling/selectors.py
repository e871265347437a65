"""Reads of the annotation domain. Each function returns querysets or plain data for one
screen or endpoint, with the joins and aggregates it needs done in the database."""

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation.errors import NotFound
from annotation.models import Assignment, AssignmentStatus, AuditEvent, Batch, BatchEvent, BatchState, Judgment, Pair, Profile, Role

User = get_user_model()


def batch_get(*, batch_id: int) -> Batch:
    batch = Batch.objects.select_related("specialty").filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch {batch_id} does not exist.")
    return batch


def batches_with_progress(*, states: list[str] | None = None, specialty_id: int | None = None) -> QuerySet[Batch]:
    """Batches annotated with pairs, judgments done / needed and active raters, in one query."""
    pairs = Pair.objects.filter(batch=OuterRef("pk"), gold_preference__isnull=True)
    qs = Batch.objects.select_related("specialty").annotate(
        n_pairs=Coalesce(Subquery(pairs.values("batch").annotate(c=Count("id")).values("c")), 0, output_field=IntegerField()),
        n_calibration=Count("pairs", filter=Q(pairs__gold_preference__isnull=False), distinct=True),
        judgments_done=Coalesce(
            Subquery(pairs.values("batch").annotate(s=Sum("judgments_count")).values("s")), 0, output_field=IntegerField()
        ),
        pairs_complete=Coalesce(
            Subquery(pairs.filter(judgments_count__gte=OuterRef("raters_per_pair")).values("batch").annotate(c=Count("id")).values("c")),
            0, output_field=IntegerField(),
        ),
        active_raters=Coalesce(
            Subquery(
                Assignment.objects.filter(batch=OuterRef("pk"), status=AssignmentStatus.LEASED, expires_at__gt=timezone.now())
                .values("batch").annotate(c=Count("rater", distinct=True)).values("c")
            ),
            0, output_field=IntegerField(),
        ),
    ).annotate(judgments_needed=F("n_pairs") * F("raters_per_pair"))
    if states:
        qs = qs.filter(state__in=states)
    if specialty_id is not None:
        qs = qs.filter(specialty_id=specialty_id)
    return qs.order_by("-created_at")


def batch_with_progress(*, batch_id: int) -> Batch:
    batch = batches_with_progress().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch {batch_id} does not exist.")
    return batch


def batch_progress(batch: Batch) -> dict:
    """Progress counts of an annotated batch (see batches_with_progress)."""
    needed = batch.judgments_needed or 0
    return {
        "pairs": batch.n_pairs,
        "calibration_pairs": batch.n_calibration,
        "pairs_complete": batch.pairs_complete,
        "judgments_done": batch.judgments_done,
        "judgments_needed": needed,
        "percent": round(100.0 * min(batch.judgments_done, needed) / needed, 1) if needed else 0.0,
        "active_raters": batch.active_raters,
    }


CLOSE_OUTCOME_MESSAGES = {
    "waiting_for_broker": "Closed. The task broker is unreachable right now: the agreement gate, the export and "
                          "training start when it is back (the close is recorded and will be handed over once).",
    "queued": "Closed. The agreement gate, the export and the training pipeline are queued for a worker.",
    "gate_blocked": "Closed. Training was not started: agreement is below the batch's gate and no override reason was given.",
    "started": "Closed. The agreement gate passed (or was overridden) and the export and training pipeline were started.",
    "failed": "Closed, but starting the export and training failed: {error}",
}


def batch_close_outcome(*, batch: Batch) -> dict | None:
    """What closing the batch has led to so far, read from the batch row and its batch_closed
    outbox row (None until the batch is closed): waiting for the broker, queued, blocked by the
    agreement gate, started, or failed (with the error)."""
    event = BatchEvent.objects.filter(batch_id=batch.pk, kind=BatchEvent.Kind.BATCH_CLOSED).only(
        "sent_at", "send_error", "handled_at", "error").first()
    if event is None:
        return None
    if batch.gate_blocked_at is not None:
        state = "gate_blocked"
    elif event.handled_at is not None:
        state = "failed" if event.error else "started"
    elif event.sent_at is None and event.send_error:
        state = "waiting_for_broker"
    else:
        state = "queued"
    return {"state": state, "message": CLOSE_OUTCOME_MESSAGES[state].format(error=event.error),
            "gate_reasons": list(batch.gate_blocked_reasons or []), "handled_at": event.handled_at}


def physician_queue(*, user) -> list[dict]:
    """Open batches of the physician's specialty, with what they have done and what is left."""
    profile = user.profile
    batches = batches_with_progress(states=[BatchState.OPEN], specialty_id=profile.specialty_id)
    mine = dict(
        Assignment.objects.filter(rater=user, status=AssignmentStatus.SUBMITTED, batch__state=BatchState.OPEN)
        .values_list("batch").annotate(c=Count("id"))
    )
    out = []
    for batch in batches:
        progress = batch_progress(batch)
        out.append({
            "batch": batch,
            "progress": progress,
            "mine_done": mine.get(batch.pk, 0),
            "left_for_me": physician_pairs_left(user=user, batch=batch),
        })
    return out


def physician_pairs_left(*, user, batch: Batch) -> int:
    """Regular pairs this physician could still be given in the batch."""
    taken = Assignment.objects.filter(pair=OuterRef("pk"), rater=user).exclude(status=AssignmentStatus.EXPIRED)
    return (
        Pair.objects.filter(batch=batch, gold_preference__isnull=True, open_slots__gt=0)
        .exclude(Exists(taken)).count()
    )


def judgments_visible_to(*, user, batch_id: int | None = None) -> QuerySet[Judgment]:
    """A physician sees only their own judgments; an admin sees all."""
    qs = Judgment.objects.select_related("rater", "pair", "batch").order_by("-created_at", "-id")
    if not (hasattr(user, "profile") and user.profile.role == Role.ADMIN):
        qs = qs.filter(rater=user)
    if batch_id is not None:
        qs = qs.filter(batch_id=batch_id)
    return qs


def assignments_of(*, user) -> QuerySet[Assignment]:
    return Assignment.objects.filter(rater=user).select_related("batch").order_by("-leased_at")


def assignment_of(*, user, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.filter(pk=assignment_id, rater=user)
        .select_related("batch", "pair__prompt", "pair__completion_a", "pair__completion_b").first()
    )
    if assignment is None:
        raise NotFound(f"Assignment {assignment_id} does not exist or is not yours.")
    return assignment


def raters_with_stats() -> QuerySet[Profile]:
    """Profiles with their judgment counts; median time per pair comes from rater_median_times."""
    return Profile.objects.select_related("user", "specialty").annotate(
        n_judgments=Count("user__judgments", filter=Q(user__judgments__is_current=True)),
    ).order_by("role", "user__username")


def rater_median_times(*, user_ids: list[int]) -> dict[int, float | None]:
    import statistics

    times: dict[int, list[int]] = {}
    for rater_id, ms in Judgment.objects.filter(rater_id__in=user_ids, is_current=True, time_spent_ms__isnull=False).values_list("rater_id", "time_spent_ms"):
        times.setdefault(rater_id, []).append(ms)
    return {uid: (statistics.median(times[uid]) / 1000.0 if times.get(uid) else None) for uid in user_ids}


def audit_events(*, username: str | None = None, batch_id: int | None = None, object_type: str | None = None,
                 object_id: str | None = None, action: str | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.select_related("actor", "batch")
    if username:
        qs = qs.filter(actor__username=username)
    if batch_id:
        qs = qs.filter(batch_id=batch_id)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=str(object_id))
    if action:
        qs = qs.filter(action__startswith=action)
    return qs


def user_get(*, user_id: int):
    user = User.objects.select_related("profile").filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user
