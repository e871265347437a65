"""Writes of the annotation domain other than importing and judging: raters, batches and
the batch state machine. Every function is keyword-only, atomic, and audited."""

from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from annotation.audit import audit_record
from annotation.errors import Conflict, DomainError, InvalidTransition, NotFound
from annotation.events import batch_event_emit
from annotation.labeling import hotsql
from annotation.models import (
    Assignment, AssignmentStatus, Batch, BatchEvent, BatchState, GateRule, Pair, PhiPolicy, Profile, RationalePolicy, Role,
    Specialty, default_rubric,
)

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
    password_check(password=password, username=username, email=email)
    specialty, created = specialty_get_or_create(name=specialty_name)
    user = User.objects.create_user(username=username, password=password, email=email, is_staff=role == Role.ADMIN)
    profile = Profile.objects.create(user=user, role=role, specialty=specialty, credentials=credentials)
    audit_record(actor=actor, action="rater.created", obj=profile, data={"username": username, "role": role, "specialty": specialty.name})
    return user, created


def password_check(*, password: str, username: str, email: str = "") -> None:
    """Django's AUTH_PASSWORD_VALIDATORS, the same ones the admin's password forms run, for every
    other way a password is set (the raters API, `manage.py add_rater`)."""
    try:
        validate_password(password or "", user=User(username=username, email=email))
    except ValidationError as exc:
        raise DomainError("Password refused: " + " ".join(exc.messages)) from exc


@transaction.atomic
def rater_set_active(*, user: User, is_active: bool, actor) -> Profile:
    """Activate or deactivate an account. Deactivation takes effect at once: the account can no
    longer log in (User.is_active, which Django's session auth and our token auth both check),
    its sessions and API tokens are deleted, and its open leases go back to the pool."""
    if not is_active and actor is not None and actor.pk == user.pk:
        raise Conflict("You cannot deactivate your own account; ask another admin.")
    profile = Profile.objects.select_for_update().get(user=user)
    profile.is_active = is_active
    profile.save(update_fields=["is_active"])
    User.objects.filter(pk=user.pk).update(is_active=is_active)
    user.is_active = is_active
    data: dict = {}
    if not is_active:
        data = {
            "sessions_ended": user_sessions_end(user_id=user.pk),
            "tokens_deleted": Token.objects.filter(user_id=user.pk).delete()[0],
            "leases_released": rater_leases_release(rater_id=user.pk),
        }
    audit_record(actor=actor, action="rater.activated" if is_active else "rater.deactivated", obj=profile, data=data)
    return profile


def user_sessions_end(*, user_id: int) -> int:
    """Delete every stored session of the user. Sessions are opaque rows keyed by a random id,
    so finding a user's means decoding the unexpired ones; deactivation is rare enough."""
    ended = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get(SESSION_KEY)) == str(user_id):
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)


def rater_leases_release(*, rater_id: int) -> int:
    """Expire the rater's running leases and give their slots back (calibration leases hold no
    slot, as in pair_lease_next). Call inside a transaction."""
    leased = list(
        Assignment.objects.select_for_update().filter(rater_id=rater_id, status=AssignmentStatus.LEASED)
        .order_by("id").values_list("id", "pair_id", "is_calibration")
    )
    Assignment.objects.filter(id__in=[a for a, _, _ in leased]).update(status=AssignmentStatus.EXPIRED)
    for pair_id in sorted(pair_id for _, pair_id, calibration in leased if not calibration):
        hotsql.pair_slots_add(pair_id=pair_id, delta=1)
    return len(leased)


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


GATE_SETTINGS = ("min_alpha", "min_rater_kappa", "gate_min_pairs", "gate_rule")


def _validate_gate(gate: dict) -> dict:
    """The agreement-gate settings a batch may override (the model's defaults otherwise)."""
    unknown = set(gate) - set(GATE_SETTINGS)
    if unknown:
        raise DomainError(f"Unknown gate setting(s) {', '.join(sorted(unknown))}: use {', '.join(GATE_SETTINGS)}.")
    for key in ("min_alpha", "min_rater_kappa"):
        if key in gate and not -1.0 <= float(gate[key]) <= 1.0:
            raise DomainError(f"{key} must be between -1 and 1.")
    if "gate_min_pairs" in gate and not 1 <= int(gate["gate_min_pairs"]) <= 1_000_000:
        raise DomainError("gate_min_pairs must be between 1 and 1,000,000.")
    if "gate_rule" in gate and gate["gate_rule"] not in GateRule.values:
        raise DomainError(f"gate_rule must be one of {', '.join(GateRule.values)}.")
    return dict(gate)


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
    gate: dict | None = None,
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
    gate = _validate_gate(gate or {})
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
        **gate,
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
            flagged = Pair.objects.filter(batch=batch, phi_findings__isnull=False).count()
            if flagged:
                raise Conflict(
                    f"{flagged} pair(s) look like they contain patient identifiers; review them "
                    f"(GET /api/batches/{batch.pk}/phi/) and clear them before opening the batch.",
                    extra={"pairs_flagged": flagged},
                )
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


@transaction.atomic
def batch_settings_update(*, batch_id: int, actor, allow_self_adjudication: bool | None = None,
                          phi_policy: str | None = None) -> Batch:
    """Admin settings of a batch that bear on safety: whether an adjudicator may decide a pair they
    rated (conflict of interest; off by default) and what an import does with likely patient
    identifiers. Every change is audited with the old and new value."""
    batch = Batch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch {batch_id} does not exist.")
    if phi_policy is not None and phi_policy not in PhiPolicy.values:
        raise DomainError(f"phi_policy must be one of {', '.join(PhiPolicy.values)}.")
    changes = {}
    for name, value in (("allow_self_adjudication", allow_self_adjudication), ("phi_policy", phi_policy)):
        if value is not None and getattr(batch, name) != value:
            changes[name] = {"from": getattr(batch, name), "to": value}
            setattr(batch, name, value)
    if changes:
        batch.save(update_fields=list(changes))
        audit_record(actor=actor, action="batch.settings_changed", obj=batch, batch=batch, data=changes)
    return batch


@transaction.atomic
def batch_phi_clear(*, batch_id: int, actor, pair_ids: list[int], note: str) -> int:
    """An admin has read the flagged pairs and says they carry no patient identifier. The findings
    move into the audit trail with the note; the pairs no longer hold the batch shut."""
    note = (note or "").strip()
    if not note:
        raise DomainError("Say why these pairs carry no patient identifier (note is required).")
    pairs = list(Pair.objects.select_for_update().filter(batch_id=batch_id, pk__in=pair_ids, phi_findings__isnull=False))
    for pair in pairs:
        audit_record(actor=actor, action="pair.phi_cleared", obj=pair, batch=batch_id,
                     data={"findings": pair.phi_findings, "note": note})
    Pair.objects.filter(pk__in=[p.pk for p in pairs]).update(phi_findings=None)
    return len(pairs)


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
