"""Importing pairs from JSONL: complete validation first, then one atomic write.

A line is either {"prompt", "response_a", "response_b", ...} or {"prompt", "completions":
[{"text", "model"}, ...]} (which yields every pair of its completions). A file with any bad
line imports nothing; every bad line is reported with its number and what to fix."""

import hashlib
import itertools
from datetime import timedelta
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotation.audit import audit_record
from annotation import background
from annotation.errors import Conflict, DomainError, ImportRejected
from annotation.labeling import hotsql, phi
from annotation.labeling.bulk import bulk_insert
from annotation.models import (
    Batch, BatchState, Completion, ImportJob, ImportJobStatus, Pair, PhiPolicy, Preference, Prompt, Specialty,
)
from annotation.parsers import json_loads_bounded
from annotation.rules import PREFERENCES

GOLD_VALUES = {p.symbol: p.value for p in PREFERENCES}
MAX_REPORTED_ERRORS = 1000


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pair_fingerprint(prompt: str, a: str, b: str) -> str:
    """The same pair in either order has one fingerprint."""
    return sha256("\x00".join([prompt, *sorted([a, b])]))


@dataclass
class ParsedCompletion:
    text: str
    model: str = ""
    model_version: str = ""
    external_id: str = ""


@dataclass
class ParsedPair:
    line: int
    prompt: str
    a: ParsedCompletion
    b: ParsedCompletion
    external_id: str = ""
    prompt_id: str = ""
    gold: int | None = None
    metadata: dict = field(default_factory=dict)
    specialty: str = ""
    fingerprint: str = ""


class _LineError(Exception):
    pass


def _text(obj: dict, key: str, max_chars: int, *, required: bool = True, where: str = "") -> str:
    label = where or key
    if key not in obj or obj[key] is None:
        if required:
            raise _LineError(f"missing field {label!r}")
        return ""
    value = obj[key]
    if not isinstance(value, str):
        raise _LineError(f"{label!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _LineError(f"{label!r} is empty")
    if len(value) > max_chars:
        raise _LineError(f"{label!r} has {len(value):,} characters; the limit is {max_chars:,}")
    return value


def _optional_id(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _LineError(f"{key!r} must be a string or an integer")
    return str(value)[:200]


def _completion(obj, where: str, max_chars: int) -> ParsedCompletion:
    if not isinstance(obj, dict):
        raise _LineError(f"{where} must be an object with 'text' and 'model'")
    return ParsedCompletion(
        text=_text(obj, "text", max_chars, where=f"{where}.text"),
        model=_text(obj, "model", 200, required=False, where=f"{where}.model"),
        model_version=_text(obj, "model_version", 100, required=False, where=f"{where}.model_version"),
        external_id=_optional_id(obj, "id"),
    )


def _parse_line(number: int, raw: bytes | str, max_chars: int) -> list[ParsedPair]:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _LineError(f"invalid UTF-8 at byte {exc.start}")
    try:
        obj = json_loads_bounded(raw)
    except json.JSONDecodeError as exc:
        raise _LineError(f"invalid JSON: {exc.msg} (column {exc.colno})")
    except ValueError as exc:  # nested too deep (json_loads_bounded checks the depth before parsing)
        raise _LineError(f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        raise _LineError("each line must be a JSON object")
    prompt = _text(obj, "prompt", max_chars)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise _LineError("'metadata' must be an object")
    gold = obj.get("gold_preference")
    if gold is not None:
        if gold not in GOLD_VALUES and gold not in Preference.values:
            raise _LineError(f"'gold_preference' must be one of {', '.join(GOLD_VALUES)}")
        gold = GOLD_VALUES.get(gold, gold)
    common = dict(line=number, prompt=prompt, external_id=_optional_id(obj, "id"), prompt_id=_optional_id(obj, "prompt_id"),
                  gold=gold, metadata=metadata, specialty=_text(obj, "specialty", 100, required=False))
    if "completions" in obj:
        items = obj["completions"]
        if not isinstance(items, list) or len(items) < 2:
            raise _LineError("'completions' must be a list of at least two {text, model} objects")
        if gold is not None:
            raise _LineError("'gold_preference' needs an explicit response_a/response_b pair, not a completions list")
        completions = [_completion(c, f"completions[{i}]", max_chars) for i, c in enumerate(items)]
        texts = [c.text for c in completions]
        if len(set(texts)) != len(texts):
            raise _LineError("two completions have identical text")
        return [ParsedPair(a=a, b=b, **common) for a, b in itertools.combinations(completions, 2)]
    if "response_a" not in obj and "response_b" not in obj:
        raise _LineError("missing field 'response_a' and 'response_b' (or give 'completions')")
    a = ParsedCompletion(text=_text(obj, "response_a", max_chars), model=_text(obj, "model_a", 200, required=False))
    b = ParsedCompletion(text=_text(obj, "response_b", max_chars), model=_text(obj, "model_b", 200, required=False))
    if a.text.strip() == b.text.strip():
        raise _LineError("response_a and response_b are identical")
    return [ParsedPair(a=a, b=b, **common)]


def pairs_parse(lines: Iterable[bytes | str], *, existing_fingerprints: set[str] = frozenset(),
                progress: Callable[[int], None] | None = None) -> list[ParsedPair]:
    """Validate every line. Raises ImportRejected listing every bad line; returns the pairs otherwise."""
    max_chars = settings.CLINPREF["MAX_TEXT_CHARS"]
    max_lines = settings.CLINPREF["MAX_IMPORT_LINES"]
    errors: list[dict] = []
    parsed: list[ParsedPair] = []
    first_seen: dict[str, int] = {}
    number = 0
    for number, raw in enumerate(lines, 1):
        if progress and number % 1000 == 0:
            progress(1000)
        if number > max_lines:
            errors.append({"line": number, "message": f"the file has more than {max_lines:,} lines; split it"})
            break
        if not (raw.strip() if isinstance(raw, (bytes, str)) else raw):
            continue  # blank lines are allowed (e.g. a trailing newline)
        try:
            for pair in _parse_line(number, raw, max_chars):
                pair.fingerprint = pair_fingerprint(pair.prompt, pair.a.text, pair.b.text)
                if pair.fingerprint in existing_fingerprints:
                    raise _LineError("duplicate pair: this batch already holds it")
                if pair.fingerprint in first_seen:
                    raise _LineError(f"duplicate pair: same prompt and responses as line {first_seen[pair.fingerprint]}")
                first_seen[pair.fingerprint] = number
                parsed.append(pair)
        except _LineError as exc:
            if len(errors) < MAX_REPORTED_ERRORS:
                errors.append({"line": number, "message": str(exc)})
    if progress:
        progress(number % 1000)
    if errors:
        raise ImportRejected(errors)
    if not parsed:
        raise ImportRejected([{"line": 0, "message": "the file holds no pairs"}])
    return parsed


def pairs_import(*, batch: Batch, lines: Iterable[bytes | str], actor,
                 progress: Callable[[int], None] | None = None) -> int:
    """Validate and import into a draft or open batch, all or nothing. Returns pairs created."""
    if batch.state not in (BatchState.DRAFT, BatchState.OPEN):
        raise Conflict(f"Batch {batch.name!r} is {batch.state}; pairs can only be added to a draft or open batch.")
    existing = set(Pair.objects.filter(batch=batch).values_list("fingerprint", flat=True))
    parsed = pairs_parse(lines, existing_fingerprints=existing, progress=progress)
    findings = pairs_phi_scan(parsed)
    # Flagging for review only works before the batch opens: an open batch would serve the pair at once.
    if findings and (batch.phi_policy == PhiPolicy.BLOCK or batch.state != BatchState.DRAFT):
        raise ImportRejected(sorted(
            ({"line": parsed[i].line, "message": "likely patient identifier: " + ", ".join(
                sorted({f"{phi.KIND_WORDS[f['kind']]} in {f['field']}" for f in found}))}
             for i, found in findings.items()), key=lambda e: e["line"])[:MAX_REPORTED_ERRORS])
    with transaction.atomic():
        created = _pairs_write(batch=batch, parsed=parsed, phi_findings=findings)
        audit_record(actor=actor, action="batch.pairs_imported", obj=batch, batch=batch,
                     data={"pairs": created, "pairs_flagged_phi": len(findings)})
        hotsql.batch_data_changed(batch_id=batch.pk)
    return created


def pairs_phi_scan(parsed: list[ParsedPair]) -> dict[int, list[dict]]:
    """Likely identifiers per parsed pair (index -> findings); each distinct text is scanned once,
    since a prompt with n completions appears in n(n-1)/2 pairs."""
    cache: dict[str, list] = {}

    def scan(text: str) -> list:
        if text not in cache:
            cache[text] = phi.phi_find(text)
        return cache[text]

    out: dict[int, list[dict]] = {}
    for i, p in enumerate(parsed):
        found = [f.as_dict(field=name) for name, text in (("prompt", p.prompt), ("response_a", p.a.text), ("response_b", p.b.text))
                 for f in scan(text)]
        if found:
            out[i] = found
    return out


def _pairs_write(*, batch: Batch, parsed: list[ParsedPair], phi_findings: dict[int, list[dict]] | None = None) -> int:
    """Three COPYs: prompts and completions (each distinct one once), then the pairs."""
    now = timezone.now()
    prompts: dict[tuple[str, str], dict] = {}
    for p in parsed:
        prompts.setdefault((p.prompt_id, p.prompt), {"specialty": p.specialty} if p.specialty else {})
    prompt_ids = dict(zip(prompts, bulk_insert(
        Prompt, ["text", "text_sha256", "external_id", "metadata", "created_at"],
        [(text, sha256(text), pid, meta, now) for (pid, text), meta in prompts.items()])))

    completions: dict[tuple, str] = {}
    for p in parsed:
        prompt_id = prompt_ids[(p.prompt_id, p.prompt)]
        for c in (p.a, p.b):
            completions.setdefault((prompt_id, c.text, c.model, c.model_version), c.external_id)
    completion_ids = dict(zip(completions, bulk_insert(
        Completion, ["prompt_id", "text", "model_name", "model_version", "external_id"],
        [(*key, external_id) for key, external_id in completions.items()])))

    rows = []
    phi_findings = phi_findings or {}
    for i, p in enumerate(parsed):
        prompt_id = prompt_ids[(p.prompt_id, p.prompt)]
        a_id = completion_ids[(prompt_id, p.a.text, p.a.model, p.a.model_version)]
        b_id = completion_ids[(prompt_id, p.b.text, p.b.model, p.b.model_version)]
        rows.append((batch.pk, prompt_id, a_id, b_id, p.external_id, p.fingerprint, p.gold, p.metadata,
                     batch.raters_per_pair, 0, phi_findings.get(i)))
    bulk_insert(Pair, ["batch_id", "prompt_id", "completion_a_id", "completion_b_id", "external_id", "fingerprint",
                       "gold_preference", "metadata", "open_slots", "judgments_count", "phi_findings"], rows)
    calibration = sum(1 for p in parsed if p.gold is not None)
    hotsql.batch_pairs_added(batch_id=batch.pk, regular=len(rows) - calibration, calibration=calibration)
    return len(rows)


def batch_for_import(*, name: str, specialty_name: str | None, raters_per_pair: int | None, actor) -> tuple[Batch, bool]:
    """The CLI's `--batch NAME`: the existing batch, or a new draft (creating the specialty if needed)."""
    from annotation.labeling.services import batch_create

    batch = Batch.objects.filter(name=name).first()
    if batch is not None:
        return batch, False
    if not specialty_name:
        raise Conflict(f"Batch {name!r} does not exist yet; give --specialty to create it.")
    return batch_create(name=name, specialty_name=specialty_name, raters_per_pair=raters_per_pair or 3,
                        created_by=actor, create_specialty=True), True


# ---------------------------------------------------------------- background imports

IMPORT_JOB = "labeling.import_job_run"
# How often (lines) a running import writes its progress to its ImportJob row.
PROGRESS_EVERY_LINES = 10_000


def import_inline_max_lines() -> int:
    return int(settings.CLINPREF["IMPORT_INLINE_MAX_LINES"])


def import_job_create(*, batch: Batch, content: bytes | Iterable[bytes], actor) -> ImportJob:
    """Store a JSONL file and queue its import; the task validates and writes it all or nothing
    (pairs_import) and records progress and every bad line on the returned ImportJob."""
    from django.core.files.base import ContentFile, File
    from django.core.files.storage import default_storage

    if batch.state not in (BatchState.DRAFT, BatchState.OPEN):
        raise Conflict(f"Batch {batch.name!r} is {batch.state}; pairs can only be added to a draft or open batch.")
    if isinstance(content, bytes):
        stored = ContentFile(content)
    else:
        stored = content if isinstance(content, File) else ContentFile(b"\n".join(content))
    name = default_storage.save(f"imports/batch-{batch.pk}/{timezone.now():%Y%m%dT%H%M%S}.jsonl", stored)
    with transaction.atomic():
        job = ImportJob.objects.create(batch=batch, created_by=actor, source=name, source_bytes=default_storage.size(name))
        audit_record(actor=actor, action="batch.import_queued", obj=batch, batch=batch,
                     data={"import_job": job.pk, "bytes": job.source_bytes})
        background.send(IMPORT_JOB, job.pk, after_commit=True)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run one queued import (the task's body). At most once: a job already started is left alone."""
    from django.core.files.storage import default_storage

    with transaction.atomic():
        job = ImportJob.objects.select_for_update(of=("self",)).select_related("created_by").get(pk=job_id)
        if job.status != ImportJobStatus.QUEUED:
            return job
        job.status, job.started_at = ImportJobStatus.RUNNING, timezone.now()
        job.heartbeat_at, job.attempts = job.started_at, job.attempts + 1
        job.save(update_fields=["status", "started_at", "heartbeat_at", "attempts"])
    # Everything this attempt writes later is conditional on still being the job's latest attempt:
    # if the reaper took the job from us (we looked dead) our late result must not overwrite it.
    ours = ImportJob.objects.filter(pk=job.pk, attempts=job.attempts)

    read = {"lines": 0, "saved": 0}

    def progress(lines: int) -> None:
        read["lines"] += lines
        if read["lines"] - read["saved"] >= PROGRESS_EVERY_LINES:
            read["saved"] = read["lines"]
            ours.update(lines_read=read["lines"], heartbeat_at=timezone.now())

    fields = ["status", "finished_at", "lines_read"]
    try:
        with default_storage.open(job.source, "rb") as fh:
            job.pairs_created = pairs_import(batch=Batch.objects.get(pk=job.batch_id), lines=fh, actor=job.created_by,
                                             progress=progress)
        job.status = ImportJobStatus.DONE
        fields.append("pairs_created")
    except ImportRejected as exc:
        job.status, job.errors, job.detail = ImportJobStatus.FAILED, exc.errors, exc.message
        fields += ["errors", "detail"]
    except DomainError as exc:
        job.status, job.detail = ImportJobStatus.FAILED, exc.message
        fields.append("detail")
    except Exception as exc:  # recorded on the row for the admin, then raised for the worker's log
        job.status, job.detail = ImportJobStatus.FAILED, f"The import failed unexpectedly: {type(exc).__name__}."
        job.finished_at, job.lines_read = timezone.now(), read["lines"]
        ours.update(**{name: getattr(job, name) for name in fields + ["detail"]})
        raise
    job.finished_at, job.lines_read = timezone.now(), read["lines"]
    if ours.update(**{name: getattr(job, name) for name in fields}):
        default_storage.delete(job.source)
    return job


# A running import reports at least every PROGRESS_EVERY_LINES lines while it reads, then writes
# everything in one transaction (about a minute per 500,000 lines on PostgreSQL): a heartbeat
# older than this means the worker died. Nothing of it was written (all or nothing), so the job
# can simply run again from its stored file.
IMPORT_STALE_AFTER = timedelta(minutes=15)
IMPORT_MAX_ATTEMPTS = 2


def import_jobs_reap_stale(*, stale_after: timedelta = IMPORT_STALE_AFTER, max_attempts: int = IMPORT_MAX_ATTEMPTS) -> list[int]:
    """Requeue running imports whose worker stopped reporting (the file is still in storage and
    nothing was written), or fail them after their last attempt. Returns the job ids handled."""
    cutoff = timezone.now() - stale_after
    handled = []
    stale_ids = list(ImportJob.objects.filter(status=ImportJobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True))
    for job_id in stale_ids:
        with transaction.atomic():
            job = ImportJob.objects.select_for_update().filter(pk=job_id, status=ImportJobStatus.RUNNING, heartbeat_at__lt=cutoff).first()
            if job is None:  # it reported in the meantime
                continue
            silent = f"its worker stopped reporting at {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC after {job.lines_read:,} lines"
            if job.attempts < max_attempts:
                job.status, job.detail = ImportJobStatus.QUEUED, f"Requeued: {silent}; nothing had been written."
                job.save(update_fields=["status", "detail"])
                background.send(IMPORT_JOB, job.pk, after_commit=True)
                action = "batch.import_requeued"
            else:
                job.status, job.finished_at = ImportJobStatus.FAILED, timezone.now()
                job.detail = (f"The import stopped: {silent}, on attempt {job.attempts} of {max_attempts}. Nothing was "
                              "imported (all or nothing); upload the file again, or split it.")
                job.save(update_fields=["status", "finished_at", "detail"])
                action = "batch.import_reaped"
            audit_record(actor=None, action=action, obj=job.batch, batch=job.batch_id,
                         data={"import_job": job.pk, "attempts": job.attempts, "lines_read": job.lines_read})
            handled.append(job.pk)
    return handled


__all__ = ["pairs_import", "import_job_create", "import_job_run", "import_jobs_reap_stale", "pairs_parse", "pair_fingerprint", "batch_for_import", "Specialty"]
