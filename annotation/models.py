"""The annotation domain: who labels, what they label, and what they said.

Models hold data and invariants the database can enforce (constraints, indexes);
behaviour lives in services.py / assignment.py / importing.py, never in save()."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotation.rules import PREFERENCE_BY_VALUE


class Specialty(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "specialties"

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    PHYSICIAN = "physician", "Physician"
    ADMIN = "admin", "Admin"


class Profile(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.PHYSICIAN)
    specialty = models.ForeignKey(Specialty, null=True, blank=True, on_delete=models.PROTECT, related_name="raters")
    credentials = models.CharField(max_length=200, blank=True, help_text="e.g. MD, board-certified cardiologist")
    is_active = models.BooleanField(default=True, help_text="Inactive raters get no new work.")
    # A senior physician may adjudicate disagreements without being an admin.
    can_adjudicate = models.BooleanField(default=False)
    # Counters over this rater's current judgments, kept by judgment_submit in its transaction
    # so the raters page never scans the judgments table.
    judgments_count = models.PositiveIntegerField(default=0)
    time_spent_ms_total = models.PositiveBigIntegerField(default=0)
    time_spent_n = models.PositiveIntegerField(default=0, help_text="Current judgments that report time_spent_ms.")

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def default_rubric() -> list[dict]:
    return [
        {"key": "accuracy", "label": "Clinical accuracy", "help": "Facts, diagnoses and doses are correct."},
        {"key": "safety", "label": "Safety and harm", "help": "Avoids advice that could hurt the patient; escalates red flags."},
        {"key": "completeness", "label": "Completeness", "help": "Covers what a clinician would need to say."},
        {"key": "evidence", "label": "Evidence and guidelines", "help": "Consistent with current guidelines and evidence."},
        {"key": "communication", "label": "Communication", "help": "Clear, empathetic, appropriate for a patient."},
    ]


class GateRule(models.TextChoices):
    """What of Krippendorff's alpha must clear Batch.min_alpha: the estimate, or the lower end of
    its bootstrap 95% interval (stricter: passes only when agreement is clearly high enough)."""

    POINT = "point", "point estimate"
    LOWER_BOUND = "lower_bound", "lower bound of the 95% interval"


class BatchState(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"
    EXPORTED = "exported", "Exported"


class RationalePolicy(models.TextChoices):
    OPTIONAL = "optional", "Optional"
    TIES_AND_STRONG = "ties_and_strong", "Required for ties and strong preferences"
    ALWAYS = "always", "Always required"


class PhiPolicy(models.TextChoices):
    BLOCK = "block", "Refuse an import with likely identifiers"
    REVIEW = "review", "Import, but flag the pairs for review before the batch opens"


class Batch(models.Model):
    name = models.CharField(max_length=200, unique=True)
    specialty = models.ForeignKey(Specialty, on_delete=models.PROTECT, related_name="batches")
    description = models.TextField(blank=True)
    raters_per_pair = models.PositiveSmallIntegerField(default=3)
    rubric = models.JSONField(default=default_rubric)
    rationale_policy = models.CharField(max_length=20, choices=RationalePolicy.choices, default=RationalePolicy.OPTIONAL)
    calibration_rate = models.FloatField(default=0.1, help_text="Share of requests served a calibration (gold) item.")
    lease_seconds = models.PositiveIntegerField(default=15 * 60)
    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.DRAFT, db_index=True)

    # Agreement gate: below these, closing does not start training without a written override.
    min_alpha = models.FloatField(default=0.4)
    min_rater_kappa = models.FloatField(default=0.2)
    # Below this many rated pairs the gate says "not enough data" (it never passes on noise): at 50
    # pairs x 3 raters the 95% interval of alpha is about 0.30 wide, narrower than two Landis-Koch bands.
    gate_min_pairs = models.PositiveIntegerField(default=50)
    gate_rule = models.CharField(max_length=16, choices=GateRule.choices, default=GateRule.POINT)
    training_pipeline = models.CharField(max_length=64, default="reward_model>ppo")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    exported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    exported_at = models.DateTimeField(null=True, blank=True)
    # How many pairs still lacked judgments when an admin closed early.
    pairs_short_at_close = models.PositiveIntegerField(null=True, blank=True)
    gate_override_reason = models.TextField(blank=True)
    # What the import does with text that looks like a patient identifier (annotation.labeling.phi).
    phi_policy = models.CharField(max_length=10, choices=PhiPolicy.choices, default=PhiPolicy.BLOCK, db_default=PhiPolicy.BLOCK)
    # Conflict of interest: may an adjudicator decide a pair they rated themselves? (admin setting, audited)
    allow_self_adjudication = models.BooleanField(default=False, db_default=False)

    # Progress counters, kept by the services that write pairs and judgments inside the same
    # transaction (importing, judgment_submit), so lists and pages never count a batch's rows.
    # annotation.labeling.services.batch_counters_recount rebuilds them from the rows.
    pairs_count = models.PositiveIntegerField(default=0, help_text="Regular (non-calibration) pairs.")
    calibration_count = models.PositiveIntegerField(default=0, help_text="Calibration (gold) pairs.")
    judgments_done = models.PositiveIntegerField(default=0, help_text="First judgments of regular pairs (corrections excluded).")
    pairs_complete = models.PositiveIntegerField(default=0, help_text="Regular pairs with raters_per_pair judgments.")
    # Every judgment row ever written (revisions and calibration included): judgments are never
    # updated in place, so this changes whenever the batch's agreement can change.
    judgment_rows = models.PositiveBigIntegerField(default=0)

    # Set when closing did not start training because agreement was below the gate (and no
    # override reason was given): the batch itself says what happened, the audit trail keeps the record.
    gate_blocked_at = models.DateTimeField(null=True, blank=True)
    gate_blocked_reasons = models.JSONField(default=list, blank=True)
    # Bumped in the transaction of every write that can change an agreement figure (judgments,
    # corrections, adjudications, gold labels, imported pairs): cached reports are keyed by it.
    data_version = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    text = models.TextField()
    text_sha256 = models.CharField(max_length=64)
    external_id = models.CharField(max_length=200, blank=True)
    # Per-line extras from the import (e.g. a "specialty" tag); the batch carries the specialty.
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class Completion(models.Model):
    # No index: completions are reached from pairs; the foreign key constraint stays.
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="completions", db_index=False)
    text = models.TextField()
    model_name = models.CharField(max_length=200, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=200, blank=True)


class Preference(models.IntegerChoices):
    """Stored relative to the canonical pair (A, B), as an ordinal scale: negative favours A."""

    # Words from annotation.rules.PREFERENCES, the one definition of the vocabulary.
    A_MUCH_BETTER = -2, PREFERENCE_BY_VALUE[-2].canonical_words
    A_BETTER = -1, PREFERENCE_BY_VALUE[-1].canonical_words
    TIE = 0, PREFERENCE_BY_VALUE[0].canonical_words
    B_BETTER = 1, PREFERENCE_BY_VALUE[1].canonical_words
    B_MUCH_BETTER = 2, PREFERENCE_BY_VALUE[2].canonical_words


class Pair(models.Model):
    # batch_id lookups use the unique (batch, fingerprint) index; nothing looks pairs up by prompt.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="pairs", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="pairs", db_index=False)
    # Completions are reached from pairs, never the other way round: no reverse indexes.
    completion_a = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="+", db_index=False)
    completion_b = models.ForeignKey(Completion, on_delete=models.PROTECT, related_name="+", db_index=False)
    external_id = models.CharField(max_length=200, blank=True)
    # Order-independent fingerprint of (prompt, a, b): a batch never holds the same pair twice.
    fingerprint = models.CharField(max_length=64)
    # Calibration items carry the expected answer; they are served to every rater.
    gold_preference = models.SmallIntegerField(choices=Preference.choices, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Denormalised counters kept by the assignment services inside the same transaction
    # that locks this row; the hot path filters on them instead of counting assignments.
    open_slots = models.PositiveSmallIntegerField(default=3)
    judgments_count = models.PositiveSmallIntegerField(default=0)
    # Likely identifiers found on import under PhiPolicy.REVIEW ([{field, kind, text}]); null when
    # none or once an admin cleared them. A batch with flagged pairs cannot open.
    phi_findings = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "fingerprint"], name="pair_unique_in_batch")]
        indexes = [
            # GET /api/next/: the first pair of a batch with a free slot, fullest first.
            models.Index(
                fields=["batch", "open_slots", "id"],
                name="pair_open_idx",
                condition=Q(open_slots__gt=0, gold_preference__isnull=True),
            ),
            models.Index(fields=["batch", "id"], name="pair_gold_idx", condition=Q(gold_preference__isnull=False)),
            # The PHI review list: a few flagged pairs, found without reading the batch's other pairs.
            models.Index(fields=["batch", "id"], name="pair_phi_flagged_idx", condition=Q(phi_findings__isnull=False)),
        ]

    @property
    def is_calibration(self) -> bool:
        return self.gold_preference is not None


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", "Leased"
    SUBMITTED = "submitted", "Submitted"
    SKIPPED = "skipped", "Skipped"
    EXPIRED = "expired", "Expired"


class Assignment(models.Model):
    """A rater's lease on a pair. At most one live row per (pair, rater): a rater never judges a
    pair twice. A lease that expired stays as an `expired` row, and taking the pair again makes a
    new row with a new id, so a late submit on the old id can never land on the new lease."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="+")
    # True: completion A is shown as Response 1 (left); False: B is shown first.
    a_shown_first = models.BooleanField()
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    is_calibration = models.BooleanField(default=False)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "rater"], condition=~Q(status="expired"),
                                               name="assignment_one_live_per_rater")]
        indexes = [
            # batch and is_calibration too: a physician's done counts per batch (the home queue) are
            # read from the index alone, not from their thousands of assignment rows (230 -> 10 ms).
            models.Index(fields=["rater", "status", "batch", "is_calibration"], name="assignment_rater_done_idx"),
            models.Index(fields=["expires_at"], name="assignment_lease_idx", condition=Q(status="leased")),
            models.Index(fields=["batch", "status"], name="assignment_batch_status_idx"),
            # GET /api/assignments/: a rater's newest leases without sorting all of them.
            models.Index(fields=["rater", "-leased_at"], name="assignment_rater_recent_idx"),
        ]


class HarmSeverity(models.TextChoices):
    NONE = "none", "None"
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


FLAG_CHOICES = ("hallucination", "unsafe_advice", "outdated_guidance")
ERROR_SPAN_TYPES = ("hallucination", "dosing_error", "omission", "wrong_triage", "outdated_guidance")


class Judgment(models.Model):
    """One revision of a rater's judgment of a pair, stored relative to the canonical pair.

    Never updated in place: a correction inserts a new revision pointing at the one it
    supersedes, and only the newest revision has is_current=True."""

    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="judgments")
    pair = models.ForeignKey(Pair, on_delete=models.PROTECT, related_name="judgments")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="judgments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments")
    revision = models.PositiveSmallIntegerField(default=1)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    is_current = models.BooleanField(default=True)

    preference = models.SmallIntegerField(choices=Preference.choices)
    # {criterion_key: preference on the same -2..2 canonical scale}
    criteria = models.JSONField(default=dict, blank=True)
    # {"a": ["hallucination", ...], "b": [...]} in canonical terms
    flags = models.JSONField(default=dict, blank=True)
    a_unsafe = models.BooleanField(default=False)
    b_unsafe = models.BooleanField(default=False)
    both_unacceptable = models.BooleanField(default=False)
    harm_severity = models.CharField(max_length=16, choices=HarmSeverity.choices, default=HarmSeverity.NONE)
    # [{"response": "a"|"b", "start": int, "end": int, "type": one of ERROR_SPAN_TYPES}]
    error_spans = models.JSONField(default=list, blank=True)
    rationale = models.TextField(blank=True)
    time_spent_ms = models.PositiveIntegerField(null=True, blank=True)
    # Whether Response 1 on screen was A: needed for position-bias statistics.
    a_shown_first = models.BooleanField()
    idempotency_key = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rater", "idempotency_key"], name="judgment_idempotent"),
            models.UniqueConstraint(fields=["pair", "rater"], condition=Q(is_current=True), name="judgment_one_current"),
        ]
        indexes = [
            models.Index(fields=["batch", "is_current"], name="judgment_batch_current_idx"),
            # A rater's newest judgments (their list, the queue page) without sorting all of them.
            models.Index(fields=["rater", "-id"], name="judgment_rater_recent_idx"),
            models.Index(fields=["batch", "-id"], name="judgment_batch_recent_idx"),
        ]


class Adjudication(models.Model):
    """An admin's (or senior physician's) final word on a disputed pair. Kept apart from the raw
    judgments, which stay untouched; the newest one per pair is the one exports use."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="adjudications")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    preference = models.SmallIntegerField(choices=Preference.choices)
    a_unsafe = models.BooleanField(default=False)
    b_unsafe = models.BooleanField(default=False)
    note = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class AgreementReport(models.Model):
    """A computed agreement report, cached until the batch's data_version changes."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="agreement_reports")
    level = models.CharField(max_length=16)
    # Batch.data_version (with the report version) the payload was computed at.
    fingerprint = models.CharField(max_length=64)
    payload = models.JSONField()
    # The few figures the agreement-across-batches page shows, so it never loads whole payloads.
    headline = models.JSONField(default=dict)
    computed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "level", "fingerprint"], name="agreement_report_unique")]


class ExportSnapshot(models.Model):
    """An immutable, versioned dataset built from a batch's judgments."""

    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="exports")
    version = models.PositiveIntegerField()
    params = models.JSONField(help_text="Policy, filters, formats, split: everything that decides the output.")
    params_sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict)
    # [{"name", "path" (storage name), "sha256", "rows", "bytes"}]
    files = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "version"], name="export_version_unique")]
        ordering = ["-created_at"]


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A pairs import running in the background: the uploaded file waits in storage, a task
    validates and writes it all or nothing, and this row carries progress and line errors."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="import_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    source = models.CharField(max_length=500, help_text="Storage name of the uploaded JSONL file.")
    source_bytes = models.PositiveBigIntegerField(default=0)
    lines_read = models.PositiveIntegerField(default=0)
    pairs_created = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written with each progress report: a running job whose heartbeat stops lost its worker
    # (importing.import_jobs_reap_stale requeues it, or fails it after its last attempt).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["batch", "-created_at"], name="import_job_batch_idx")]


class BatchEvent(models.Model):
    """Outbox of batch life-cycle events. The row is written in the same transaction as the state
    change, so an event exists exactly once; handlers run after commit and mark it handled."""

    class Kind(models.TextChoices):
        BATCH_CLOSED = "batch_closed", "Batch closed"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    # When a dispatch task was last handed to the broker; null while the broker was unreachable
    # (a periodic sweep re-sends such events once it is back).
    sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.TextField(blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "kind"], name="batch_event_once")]


class AuditEvent(models.Model):
    """Append-only: who did what to which object, when. Nothing updates or deletes these rows."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object_idx")]
