"""Writes of the annotation domain other than importing and judging: raters, batches and
the batch state machine. Every function is keyword-only, atomic, and audited."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, InvalidTransition, NotFound
from annotation.events import batch_event_emit
from annotation.models import Batch, BatchEvent, BatchState, Pair, Profile, RationalePolicy, Role, Specialty, default_rubric

User = get_user_model()

# The only legal moves of a batch. Closing is final: reopening would let new judgments
# land after an export or a training run was built from the batch.
BATCH_TRANSITIONS = {
    BatchState.DRAFT: {BatchState.OPEN},
    BatchState.OPEN: {BatchState.CLOSED},
    BatchState.CLOSED: {BatchState.EXPORTED},
    BatchState.EXPORTED: set(),
}


def specialty_get_or_create(*, name: str) -> tuple[Specialty, bool]:
    name = " ".join(name.split())
    if not name:
        raise DomainError("Specialty name is empty.")
    slug = slugify(name)
    existing = Specialty.objects.filter(slug=slug).first()
    if existing:
        return existing, False
    return Specialty.objects.create(name=name, slug=slug), True


def specialty_get(*, name: str) -> Specialty:
    specialty = Specialty.objects.filter(slug=slugify(name)).first()
    if specialty is None:
        known = ", ".join(Specialty.objects.values_list("name", flat=True)) or "none yet"
        raise DomainError(f"Unknown specialty {name!r}. Known specialties: {known}.")
    return specialty


@transaction.atomic
def rater_create(
    *,
    username: str,
    password: str,
    specialty_name: str,
    role: str = Role.PHYSICIAN,
    credentials: str = "",
    email: str = "",
    actor=None,
) -> tuple[User, bool]:
    """Create a physician or admin. Returns (user, specialty_created)."""
    if not username or not username.strip():
        raise DomainError("Username is empty.")
    if User.objects.filter(username=username).exists():
        raise Conflict(f"User {username!r} already exists.")
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}; use one of {', '.join(Role.values)}.")
    if len(password or "") < 8:
        raise DomainError("Password must have at least 8 characters.")
    specialty, created = specialty_get_or_create(name=specialty_name)
    user = User.objects.create_user(username=username, password=password, email=email, is_staff=role == Role.ADMIN)
    profile = Profile.objects.create(user=user, role=role, specialty=specialty, credentials=credentials)
    audit_record(actor=actor, action="rater.created", obj=profile, data={"username": username, "role": role, "specialty": specialty.name})
    return user, created


@transaction.atomic
def rater_set_active(*, user: User, is_active: bool, actor) -> Profile:
    profile = Profile.objects.select_for_update().get(user=user)
    profile.is_active = is_active
    profile.save(update_fields=["is_active"])
    audit_record(actor=actor, action="rater.activated" if is_active else "rater.deactivated", obj=profile)
    return profile


def _validate_rubric(rubric: list) -> list[dict]:
    if not isinstance(rubric, list) or not rubric:
        raise DomainError("Rubric must be a non-empty list of criteria like {\"key\": \"accuracy\", \"label\": \"Clinical accuracy\"}.")
    seen, cleaned = set(), []
    for i, item in enumerate(rubric, 1):
        if not isinstance(item, dict) or not str(item.get("key", "")).strip() or not str(item.get("label", "")).strip():
            raise DomainError(f"Rubric criterion {i} needs a non-empty 'key' and 'label'.")
        key = slugify(item["key"]).replace("-", "_")
        if key in seen:
            raise DomainError(f"Rubric criterion key {key!r} appears twice.")
        seen.add(key)
        cleaned.append({"key": key, "label": str(item["label"]).strip(), "help": str(item.get("help", "")).strip()})
    return cleaned


@transaction.atomic
def batch_create(
    *,
    name: str,
    specialty_name: str,
    created_by,
    raters_per_pair: int = 3,
    rubric: list | None = None,
    description: str = "",
    rationale_policy: str = RationalePolicy.OPTIONAL,
    calibration_rate: float = 0.1,
    lease_seconds: int | None = None,
    create_specialty: bool = False,
) -> Batch:
    """Create a draft batch. The API refuses unknown specialties; the CLI import may create them."""
    name = (name or "").strip()
    if not name:
        raise DomainError("Batch name is empty.")
    if Batch.objects.filter(name=name).exists():
        raise Conflict(f"A batch named {name!r} already exists.")
    if not 1 <= int(raters_per_pair) <= 20:
        raise DomainError("raters_per_pair must be between 1 and 20.")
    if not 0.0 <= float(calibration_rate) <= 1.0:
        raise DomainError("calibration_rate must be between 0 and 1.")
    if rationale_policy not in RationalePolicy.values:
        raise DomainError(f"rationale_policy must be one of {', '.join(RationalePolicy.values)}.")
    if create_specialty:
        specialty, _ = specialty_get_or_create(name=specialty_name)
    else:
        specialty = specialty_get(name=specialty_name)
    from django.conf import settings

    batch = Batch.objects.create(
        name=name,
        specialty=specialty,
        raters_per_pair=int(raters_per_pair),
        rubric=_validate_rubric(rubric) if rubric is not None else default_rubric(),
        description=description,
        rationale_policy=rationale_policy,
        calibration_rate=float(calibration_rate),
        lease_seconds=lease_seconds or settings.CLINPREF["LEASE_SECONDS"],
        created_by=created_by,
    )
    audit_record(actor=created_by, action="batch.created", obj=batch, batch=batch,
                 data={"specialty": specialty.name, "raters_per_pair": batch.raters_per_pair})
    return batch


def _batch_locked(batch_id: int) -> Batch:
    try:
        return Batch.objects.select_for_update().get(pk=batch_id)
    except Batch.DoesNotExist:
        raise NotFound(f"Batch {batch_id} does not exist.")


def batch_transition(*, batch_id: int, to_state: str, actor, force: bool = False, reason: str = "") -> Batch:
    """The one way a batch changes state. Validates the move under a row lock, records who and
    when, audits it, and on close writes the batch_closed event (exactly once: the lock makes a
    concurrent second close see the batch already closed and fail with 409)."""
    with transaction.atomic():
        batch = _batch_locked(batch_id)
        if to_state not in BATCH_TRANSITIONS.get(batch.state, set()):
            allowed = ", ".join(sorted(BATCH_TRANSITIONS.get(batch.state, set()))) or "none (final state)"
            raise InvalidTransition(
                f"Batch {batch.name!r} is {batch.state}; it cannot become {to_state}. Allowed next: {allowed}.",
                extra={"state": batch.state},
            )
        now = timezone.now()
        fields = ["state"]
        data: dict = {"from": batch.state, "to": to_state}
        if to_state == BatchState.OPEN:
            if not batch.pairs_count + batch.calibration_count:
                raise Conflict(f"Batch {batch.name!r} has no pairs; import pairs before opening it.")
            batch.opened_by, batch.opened_at = actor, now
            fields += ["opened_by", "opened_at"]
        elif to_state == BatchState.CLOSED:
            short = batch_pairs_short(batch=batch)
            if short and not force:
                raise Conflict(
                    f"{short} pair(s) still lack judgments. Close early with force=true; the batch will record the shortfall.",
                    extra={"pairs_short": short},
                )
            batch.closed_by, batch.closed_at, batch.pairs_short_at_close = actor, now, short
            fields += ["closed_by", "closed_at", "pairs_short_at_close"]
            data["pairs_short"] = short
            if reason:
                batch.gate_override_reason = reason
                fields.append("gate_override_reason")
                data["gate_override_reason"] = reason
        elif to_state == BatchState.EXPORTED:
            batch.exported_by, batch.exported_at = actor, now
            fields += ["exported_by", "exported_at"]
        batch.state = to_state
        batch.save(update_fields=fields)
        audit_record(actor=actor, action=f"batch.{to_state}", obj=batch, batch=batch, data=data)
        if to_state == BatchState.CLOSED:
            event = BatchEvent.objects.create(batch=batch, kind=BatchEvent.Kind.BATCH_CLOSED, payload=data)
            batch_event_emit(event=event)
        return batch


def batch_open(*, batch_id: int, actor) -> Batch:
    return batch_transition(batch_id=batch_id, to_state=BatchState.OPEN, actor=actor)


def batch_close(*, batch_id: int, actor, force: bool = False, override_reason: str = "") -> Batch:
    return batch_transition(batch_id=batch_id, to_state=BatchState.CLOSED, actor=actor, force=force, reason=override_reason)


def batch_pairs_short(*, batch: Batch) -> int:
    """Regular (non-calibration) pairs with fewer current judgments than the batch asks for,
    from the batch's counters (no count of its pairs)."""
    return max(batch.pairs_count - batch.pairs_complete, 0)


# How the counters on Batch and Profile follow from the rows: one grouped pass per table.
_BATCH_COUNTERS_SQL = """
UPDATE annotation_batch SET
  pairs_count = COALESCE((SELECT COUNT(*) FROM annotation_pair p
                          WHERE p.batch_id = annotation_batch.id AND p.gold_preference IS NULL), 0),
  calibration_count = COALESCE((SELECT COUNT(*) FROM annotation_pair p
                                WHERE p.batch_id = annotation_batch.id AND p.gold_preference IS NOT NULL), 0),
  judgments_done = COALESCE((SELECT SUM(p.judgments_count) FROM annotation_pair p
                             WHERE p.batch_id = annotation_batch.id AND p.gold_preference IS NULL), 0),
  pairs_complete = COALESCE((SELECT COUNT(*) FROM annotation_pair p WHERE p.batch_id = annotation_batch.id
                             AND p.gold_preference IS NULL AND p.judgments_count >= annotation_batch.raters_per_pair), 0),
  judgment_rows = COALESCE((SELECT COUNT(*) FROM annotation_judgment j WHERE j.batch_id = annotation_batch.id), 0)
"""
_PROFILE_COUNTERS_SQL = """
UPDATE annotation_profile SET
  judgments_count = COALESCE((SELECT COUNT(*) FROM annotation_judgment j
                              WHERE j.rater_id = annotation_profile.user_id AND j.is_current), 0),
  time_spent_ms_total = COALESCE((SELECT SUM(j.time_spent_ms) FROM annotation_judgment j
                                  WHERE j.rater_id = annotation_profile.user_id AND j.is_current), 0),
  time_spent_n = COALESCE((SELECT COUNT(j.time_spent_ms) FROM annotation_judgment j
                           WHERE j.rater_id = annotation_profile.user_id AND j.is_current), 0)
"""


@transaction.atomic
def batch_counters_recount(*, batch_ids: list[int] | None = None, rater_ids: list[int] | None = None) -> None:
    """Rebuild the progress counters of batches and raters from their rows (all when no ids are
    given). For the migration that introduced them, bulk loads that bypass the services (the
    scale bench, test factories) and repairs; the services keep them current otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        for sql, ids, column in ((_BATCH_COUNTERS_SQL, batch_ids, "id"), (_PROFILE_COUNTERS_SQL, rater_ids, "user_id")):
            if ids is not None and not ids:
                continue
            where = f" WHERE {column} IN ({', '.join(['%s'] * len(ids))})" if ids else ""
            cursor.execute(sql + where, list(ids or []))
