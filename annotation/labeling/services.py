"""Writes of the annotation domain other than importing and judging: raters, batches and
the batch state machine. Every function is keyword-only, atomic, and audited."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, InvalidTransition, NotFound
from annotation.events import batch_event_emit
from annotation.labeling import hotsql
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
            if not Pair.objects.filter(batch=batch).exists():
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


@transaction.atomic
def pair_gold_set(*, pair_id: int, gold_preference: int, actor) -> Pair:
    """Correct the gold label of a calibration pair while its batch is still a draft or open.
    Only the label changes, never whether the pair is a calibration pair (that decides how its
    slots are handed out), so the number of gold pairs stays the same; the batch's data_version
    moves, so cached agreement reports (gold accuracy per rater) are rebuilt."""
    pair = Pair.objects.select_for_update().select_related("batch").filter(pk=pair_id).first()
    if pair is None:
        raise NotFound(f"Pair {pair_id} does not exist.")
    if pair.gold_preference is None:
        raise Conflict("This pair is not a calibration pair; gold labels are set when pairs are imported.")
    if pair.batch.state not in (BatchState.DRAFT, BatchState.OPEN):
        raise Conflict(f"Batch {pair.batch.name!r} is {pair.batch.state}; gold labels can change only before it closes.")
    if gold_preference not in (-2, -1, 0, 1, 2):
        raise DomainError("gold_preference must be an integer from -2 (A much better) to 2 (B much better).")
    previous = pair.gold_preference
    pair.gold_preference = gold_preference
    pair.save(update_fields=["gold_preference"])
    audit_record(actor=actor, action="pair.gold_changed", obj=pair, batch=pair.batch_id,
                 data={"from": previous, "to": gold_preference})
    hotsql.batch_data_changed(batch_id=pair.batch_id)
    return pair


def batch_pairs_short(*, batch: Batch) -> int:
    """Regular (non-calibration) pairs with fewer current judgments than the batch asks for."""
    return Pair.objects.filter(
        batch=batch, gold_preference__isnull=True, judgments_count__lt=batch.raters_per_pair
    ).count()
