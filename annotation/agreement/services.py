"""Agreement reports for batches: load a batch's current judgments into arrays, run the pure
engine (annotation.agreement), add what the dashboard shows (Landis-Koch wording, preference
distribution, per-criterion agreement, most-disputed pairs), and cache the result in
AgreementReport until the batch's data_version changes.

Selectors for the dashboard and the API:
- agreement_report_for_batch(batch=, level=) -> dict   the cached report (+ the live gate)
- agreement_heatmap(report=) -> dict                    raters x raters kappa matrix
- agreement_table_csv(report=, table=) -> str           CSV of a report table
- agreement_report_or_queue(batch=, level=)            cached, computed now (small batch) or queued (large)
- agreement_trend() -> list[dict]                       headline figures per batch, from cached reports
- agreement_summary(batch=) -> dict                     headline figures (used by exports)
- batch_agreement_gate(batch=) -> (passed, reasons)     the training gate
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import chain

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import IntegerField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Greatest, Least
from django.utils import timezone

from annotation import agreement as engine
from annotation.agreement.gate import GATE_NOT_ENOUGH_DATA, gate_from_headline, gate_from_report
from annotation import background
from annotation.audit import audit_record
from annotation.errors import DomainError
from annotation.spreadsheet import csv_text
from annotation.models import Adjudication, AgreementReport, Batch, BatchState, Judgment, Pair

logger = logging.getLogger(__name__)

DEFAULT_LEVEL = "three"
# Bump when the report's content or the engine's figures change, so cached reports are rebuilt.
REPORT_VERSION = "1"
DISPUTED_IN_REPORT = 25
TABLES = ("pairwise", "per_rater", "disputed", "criteria")
# The default metric of each granularity: the five-point scale is ordinal (weighted kappas,
# ordinal alpha); three classes and binary are read as categories.
LEVEL_METRIC = {"five": "ordinal", "three": "nominal", "binary": "nominal"}


def bootstrap_resamples() -> int:
    return int(getattr(settings, "AGREEMENT_BOOTSTRAP_RESAMPLES", 1000))


def level_validate(level: str | None) -> str:
    level = level or DEFAULT_LEVEL
    if level not in engine.LEVELS:
        raise DomainError(f"Unknown level {level!r}: use one of {', '.join(engine.LEVELS)}.")
    return level


# --- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchJudgments:
    """A batch's current judgments as parallel arrays (one row per judgment)."""

    pair: np.ndarray
    rater: np.ndarray
    preference: np.ndarray
    a_shown_first: np.ndarray
    time_ms: np.ndarray  # float, NaN when unknown
    criteria: dict[str, np.ndarray]  # criterion key -> preference -2..2, or -3 when not rated
    usernames: dict[int, str]
    gold: dict[int, int]  # pair id -> gold preference, calibration pairs only


CRITERIA_PER_COLUMN = 10  # 6**10 < 2**31: a packed column stays a PostgreSQL integer
_NO_TIME = -1


def _criteria_packed(keys: list[str]) -> list:
    """Rubric criteria packed into integer columns, base 6 (0 = not rated, 1..5 = -2..2), so the
    database extracts them from the JSON and Python receives one small int per judgment."""
    columns = []
    for start in range(0, len(keys), CRITERIA_PER_COLUMN):
        packed = None
        for i, key in enumerate(keys[start: start + CRITERIA_PER_COLUMN]):
            value = Coalesce(Cast(KeyTextTransform(key, "criteria"), IntegerField()), Value(-3))
            # Services validate criteria to -2..2; clamping keeps one bad value from spilling into the
            # others. Coalesce first: PostgreSQL's GREATEST ignores NULLs, SQLite's MAX returns NULL.
            digit = Greatest(Least(value, Value(2)), Value(-3)) + Value(3)
            term = digit * Value(6**i)
            packed = term if packed is None else packed + term
        columns.append(packed)
    return columns


def batch_judgments_load(*, batch: Batch) -> BatchJudgments:
    """One values_list query for the judgments, plus two small ones for usernames and gold labels.

    The query is built by the ORM but run on the raw cursor: Django's per-value converters for
    annotated columns cost ~4 s per million rows, and everything here is already an integer
    (NULLs are coalesced in SQL). Criteria come packed (see _criteria_packed)."""
    keys = [c["key"] for c in (batch.rubric or []) if isinstance(c, dict) and c.get("key")]
    packed = {f"crit_{i}": expr for i, expr in enumerate(_criteria_packed(keys))}
    query = (
        Judgment.objects.filter(batch=batch, is_current=True)
        .annotate(time_or_none=Coalesce("time_spent_ms", Value(_NO_TIME)), **packed)
        .values_list("pair_id", "rater_id", "preference", "a_shown_first", "time_or_none", *packed)
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = 5 + len(packed)
    table = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=len(rows) * width).reshape(len(rows), width)
    del rows
    criteria = {}
    for i, key in enumerate(keys):
        digit = (table[:, 5 + i // CRITERIA_PER_COLUMN] // 6 ** (i % CRITERIA_PER_COLUMN)) % 6
        criteria[key] = digit - 3  # -3: not rated
    rater = table[:, 1]
    users = get_user_model().objects.filter(pk__in=np.unique(rater).tolist()).values_list("pk", "username")
    gold = dict(Pair.objects.filter(batch=batch, gold_preference__isnull=False).values_list("pk", "gold_preference"))
    time_ms = table[:, 4].astype(np.float64)
    time_ms[table[:, 4] == _NO_TIME] = np.nan
    return BatchJudgments(
        pair=table[:, 0].copy(),
        rater=rater.copy(),
        preference=table[:, 2].copy(),
        a_shown_first=table[:, 3].astype(bool),
        time_ms=time_ms,
        criteria=criteria,
        usernames=dict(users),
        gold=gold,
    )


def ratings_for_level(data: BatchJudgments, *, level: str) -> engine.Ratings:
    values, keep = engine.preference_at_level(data.preference, level)
    scale = engine.LEVEL_SCALES[level]
    gold = None
    if data.gold:
        gold_items = np.fromiter(data.gold.keys(), dtype=np.int64)
        gold_values, gold_keep = engine.preference_at_level(np.fromiter(data.gold.values(), dtype=np.int64), level)
        gold = dict(zip(gold_items[gold_keep].tolist(), gold_values[gold_keep].tolist()))
    return engine.ratings_build(
        item=data.pair[keep],
        rater=data.rater[keep],
        label=values[keep],
        categories=scale,
        gold=gold,
        picked_first=engine.picked_first_from_preference(data.preference, data.a_shown_first)[keep],
        time_ms=data.time_ms[keep],
        tie_value=0,
    )


# --- the report ---------------------------------------------------------------------------------


def agreement_report_build(
    *, batch: Batch, level: str = DEFAULT_LEVEL, metric: str | None = None, bootstrap: int | None = None, seed: int = 0
) -> dict:
    """Compute a batch's report now (no cache). Rater ids are usernames. The metric defaults to
    the level's (ordinal for the five-point scale, nominal otherwise)."""
    level = level_validate(level)
    metric = metric or LEVEL_METRIC[level]
    if metric not in engine.METRICS:
        raise DomainError(f"Unknown metric {metric!r}: use one of {', '.join(engine.METRICS)}.")
    bootstrap = bootstrap_resamples() if bootstrap is None else bootstrap
    started = time.perf_counter()
    data = batch_judgments_load(batch=batch)
    loaded = time.perf_counter()
    ratings = ratings_for_level(data, level=level)
    report = engine.agreement_report(ratings, metric=metric, level=level, bootstrap=bootstrap, seed=seed)
    _name_raters(report, data.usernames)
    report["batch"] = {"id": batch.pk, "name": batch.name, "state": batch.state}
    report["category_names"] = dict(zip(map(str, engine.LEVEL_SCALES[level]), engine.LEVEL_CATEGORY_NAMES[level]))
    report["preference_distribution"] = _preference_distribution(data)
    report["criteria"] = _criteria_agreement(batch, data, level=level, metric=metric)
    report["n_disputed"], report["disputed"] = _disputed(data, limit=DISPUTED_IN_REPORT)
    if data.gold:
        report["notes"].append(
            f"{len(data.gold)} calibration (gold) pair(s) are included; every rater sees them, so they weigh on pairwise overlap."
        )
    report["timing_s"] = {"load": round(loaded - started, 3), "compute": round(time.perf_counter() - loaded, 3)}
    return report


def _name_raters(report: dict, usernames: dict[int, str]) -> None:
    for pair in report["cohen_kappa"]:
        pair["rater_a"] = usernames.get(pair["rater_a"], str(pair["rater_a"]))
        pair["rater_b"] = usernames.get(pair["rater_b"], str(pair["rater_b"]))
    for row in report["per_rater"]:
        row["rater_user_id"] = row["rater"]
        row["rater"] = usernames.get(row["rater"], str(row["rater"]))


def _preference_distribution(data: BatchJudgments) -> dict:
    counts = np.bincount(data.preference + 2, minlength=5) if len(data.preference) else np.zeros(5, dtype=int)
    total = int(counts.sum())
    return {
        "counts": {str(v): int(c) for v, c in zip(engine.LEVEL_SCALES["five"], counts)},
        "shares": {str(v): (float(c) / total if total else None) for v, c in zip(engine.LEVEL_SCALES["five"], counts)},
        "labels": dict(zip(map(str, engine.LEVEL_SCALES["five"]), engine.LEVEL_CATEGORY_NAMES["five"])),
        "n": total,
        "by_rater": _preference_counts_by_rater(data),
    }


def _preference_counts_by_rater(data: BatchJudgments) -> dict[str, dict[str, int]]:
    raters, code = engine.factorize(data.rater)
    table = np.bincount(code * 5 + data.preference + 2, minlength=len(raters) * 5).reshape(-1, 5)
    return {
        data.usernames.get(int(r), str(r)): {str(v): int(c) for v, c in zip(engine.LEVEL_SCALES["five"], row)}
        for r, row in zip(raters.tolist(), table)
    }


def _criteria_agreement(batch: Batch, data: BatchJudgments, *, level: str, metric: str) -> list[dict]:
    labels = {c["key"]: c.get("label", c["key"]) for c in (batch.rubric or []) if isinstance(c, dict) and c.get("key")}
    scale = engine.LEVEL_SCALES[level]
    _, item_code = engine.factorize(data.pair)  # shared by every criterion
    n_items = int(item_code.max()) + 1 if len(item_code) else 0
    out = []
    for key, raw in data.criteria.items():
        values, keep = engine.preference_at_level(raw, level)
        keep &= raw >= -2
        head = engine.agreement_headline_codes(
            item_code=item_code[keep], rater_code=data.rater[keep], label_code=np.searchsorted(scale, values[keep]),
            n_items=n_items, categories=scale, metric=metric,
        )
        out.append({
            "key": key,
            "label": labels.get(key, key),
            "n_judgments": head["n_judgments"],
            "n_items_multiply_rated": head["n_items_multiply_rated"],
            "percent_agreement": head["percent_agreement"],
            "fleiss_kappa": head["fleiss_kappa"],
            "krippendorff_alpha": head["krippendorff_alpha"],
            "interpretation": engine.landis_koch(head["krippendorff_alpha"]),
            "notes": head["notes"],
        })
    return out


def _disputed(data: BatchJudgments, *, limit: int) -> tuple[int, list[dict]]:
    """(how many pairs are disputed, the `limit` most disputed)."""
    found = engine.disputed_items(data.pair, data.preference)
    top = found["item"][:limit].tolist()
    pairs = dict(Pair.objects.filter(pk__in=top).values_list("pk", "external_id"))
    adjudicated = set(Adjudication.objects.filter(pair_id__in=top).values_list("pair_id", flat=True))
    return len(found["item"]), [
        {
            "pair": pid,
            "external_id": pairs.get(pid, ""),
            "n": int(found["n"][i]),
            "counts": dict(zip(map(str, engine.LEVEL_SCALES["five"]), map(int, found["counts"][i]))),
            "opposite_sides": bool(found["opposite"][i]),
            "disagreement": float(found["disagreement"][i]),
            "spread": int(found["spread"][i]),
            "adjudicated": pid in adjudicated,
        }
        for i, pid in enumerate(top)
    ]


# --- caching ------------------------------------------------------------------------------------


def _fingerprint(*, data_version: int) -> str:
    return f"r{REPORT_VERSION}-b{bootstrap_resamples()}-d{data_version}"


def batch_agreement_fingerprint(*, batch: Batch) -> str:
    """The key of a batch's cached reports: its data_version, which every write that can change a
    figure bumps in its own transaction (judgments and corrections, adjudications, gold labels,
    imported pairs), plus what else decides the payload (report version, bootstrap resamples).
    Read from the row, not from `batch`, which may be stale; read before the judgments are loaded,
    so a write that lands in between makes the stored report newer than its key, never older."""
    version = Batch.objects.filter(pk=batch.pk).values_list("data_version", flat=True).first() or 0
    return _fingerprint(data_version=version)


def report_headline(report: dict) -> dict:
    """What the agreement-across-batches page needs of a report, stored beside the payload."""
    kappas = [row.get("kappa_vs_consensus") for row in report.get("per_rater") or []]
    kappas = [k for k in kappas if k is not None]
    return {**{k: report.get(k) for k in HEADLINE_KEYS}, "min_kappa_vs_consensus": min(kappas) if kappas else None,
            "n_items_multiply_rated": report.get("n_items_multiply_rated")}


def agreement_report_cached(*, batch: Batch, level: str = DEFAULT_LEVEL) -> dict | None:
    """The batch's current report from the cache (with the live gate), or None when it has not
    been computed since the batch's judgments last changed."""
    level = level_validate(level)
    fingerprint = batch_agreement_fingerprint(batch=batch)
    cached = AgreementReport.objects.filter(batch=batch, level=level, fingerprint=fingerprint).values_list("payload", flat=True).first()
    return None if cached is None else _with_gate(cached, batch=batch, level=level)


def agreement_report_for_batch(*, batch: Batch, level: str = DEFAULT_LEVEL) -> dict:
    """The batch's report at a granularity, computed once per change of its data and served
    from AgreementReport otherwise. The training gate is added fresh (thresholds can change
    without the judgments changing)."""
    level = level_validate(level)
    fingerprint = batch_agreement_fingerprint(batch=batch)
    cached = AgreementReport.objects.filter(batch=batch, level=level, fingerprint=fingerprint).values_list("payload", flat=True).first()
    if cached is None:
        cached = agreement_report_build(batch=batch, level=level)
        cached["fingerprint"] = fingerprint
        try:
            with transaction.atomic():
                AgreementReport.objects.create(batch=batch, level=level, fingerprint=fingerprint, payload=cached,
                                               headline=report_headline(cached))
        except IntegrityError:
            pass  # a concurrent request stored the same report first
        AgreementReport.objects.filter(batch=batch, level=level).exclude(fingerprint=fingerprint).delete()
        logger.info("agreement.report_computed", extra={"batch_id": batch.pk, "level": level, "timing": cached["timing_s"]})
    return _with_gate(cached, batch=batch, level=level)


def _with_gate(cached: dict, *, batch: Batch, level: str) -> dict:
    report = dict(cached)
    if level == DEFAULT_LEVEL:
        report["gate"] = gate_from_report(report, min_alpha=batch.min_alpha, min_rater_kappa=batch.min_rater_kappa,
                                          min_pairs=batch.gate_min_pairs, rule=batch.gate_rule)
    return report


# --- computing in the background ------------------------------------------------------------------

AGREEMENT_JOB = "agreement.report_compute"
_COMPUTING_KEY = "agreement:computing:{batch}:{level}:{fingerprint}"
# How long a claim to compute a report stands before another request may queue it again (a
# worker that died mid-way must not block the report forever).
COMPUTING_CLAIM_SECONDS = 15 * 60


def agreement_inline_max_judgments() -> int:
    """Batches with more judgment rows than this get their reports computed by a task, never
    inside a page view or an API request."""
    return int(getattr(settings, "AGREEMENT_INLINE_MAX_JUDGMENTS", 200_000))


def agreement_report_or_queue(*, batch: Batch, level: str = DEFAULT_LEVEL) -> tuple[dict | None, dict]:
    """(report, status) for a page or an API request. A small batch's report is computed now if
    needed; a large batch's is served from the cache or queued, and status says since when it
    has been computing ({"state": "ready"} or {"state": "computing", "since": iso, "judgments": n})."""
    level = level_validate(level)
    if Batch.objects.filter(pk=batch.pk).values_list("judgment_rows", flat=True).first() <= agreement_inline_max_judgments():
        return agreement_report_for_batch(batch=batch, level=level), {"state": "ready"}
    report = agreement_report_cached(batch=batch, level=level)
    if report is not None:
        return report, {"state": "ready"}
    since = agreement_report_queue(batch=batch, level=level)
    report = agreement_report_cached(batch=batch, level=level)  # eager mode (no broker) computed it just now
    if report is not None:
        return report, {"state": "ready"}
    return None, {"state": "computing", "since": since, "judgments": batch.judgment_rows, "level": level}


def agreement_report_queue(*, batch: Batch, level: str = DEFAULT_LEVEL, fingerprint: str | None = None) -> str:
    """Queue the computation of a batch's report unless one is already under way for the same
    judgments; returns when the current computation was queued (ISO 8601)."""
    from django.core.cache import cache

    fingerprint = fingerprint or batch_agreement_fingerprint(batch=batch)
    # created_at too: a database that reuses ids (SQLite after a rollback) must not meet an old claim.
    key = _COMPUTING_KEY.format(batch=f"{batch.pk}:{batch.created_at.timestamp()}", level=level, fingerprint=fingerprint)
    now = timezone.now().isoformat()
    if cache.add(key, now, timeout=COMPUTING_CLAIM_SECONDS):
        # Read-only work over committed judgments: nothing to wait for.
        background.send(AGREEMENT_JOB, batch.pk, level)
        return now
    return cache.get(key) or now


# --- the training gate (its rules: annotation.agreement.gate) -------------------------------------


def batch_agreement_gate(*, batch: Batch) -> tuple[bool, list[str]]:
    """Whether the batch's agreement (three classes, Krippendorff's alpha and each rater's kappa
    against the consensus of the others) clears the batch's gate (gate_from_report)."""
    report = agreement_report_for_batch(batch=batch, level=DEFAULT_LEVEL)
    return report["gate"]["passed"], report["gate"]["reasons"]


# --- derived views for the dashboard ----------------------------------------------------------------


HEADLINE_KEYS = (
    "n_judgments", "n_items", "n_raters", "percent_agreement", "fleiss_kappa", "fleiss_kappa_ci",
    "krippendorff_alpha", "krippendorff_alpha_ci", "mean_cohen_kappa", "interpretation",
)


def agreement_summary(*, batch: Batch) -> dict:
    """Headline figures of the batch's default report (what an export manifest records)."""
    report = agreement_report_for_batch(batch=batch)
    return {"available": True, "level": report["level"], "fingerprint": report.get("fingerprint"),
            **{k: report[k] for k in HEADLINE_KEYS}, "gate": report.get("gate"), "notes": report["notes"]}


# A heatmap is read cell by cell: past about 30 raters it is a wall of colour (and at 200 raters
# 40,000 cells, 10 MB of page). Above this it shows the raters who agree least with the others.
HEATMAP_MAX_RATERS = 30


def agreement_heatmap(*, report: dict, max_raters: int = HEATMAP_MAX_RATERS) -> dict:
    """Raters x raters matrix of pairwise kappa (None where two raters share no item). With more
    than max_raters raters, the max_raters lowest in kappa against the consensus (the ones an admin
    looks at first; undefined last) in report order; `n_raters` says how many there are in all."""
    rows = report["per_rater"]
    if len(rows) > max_raters:
        def low_first(row):
            value = row.get("kappa_vs_consensus")
            return (value is None, value if value is not None else 0.0)

        keep = {row["rater"] for row in sorted(rows, key=low_first)[:max_raters]}
        rows = [row for row in rows if row["rater"] in keep]
    raters = [row["rater"] for row in rows]
    index = {name: i for i, name in enumerate(raters)}
    kappa = [[None] * len(raters) for _ in raters]
    overlap = [[0] * len(raters) for _ in raters]
    for pair in report["cohen_kappa"]:
        a, b = index.get(pair["rater_a"]), index.get(pair["rater_b"])
        if a is None or b is None:
            continue
        kappa[a][b] = kappa[b][a] = pair["kappa"]
        overlap[a][b] = overlap[b][a] = pair["n"]
    return {"raters": raters, "kappa": kappa, "n": overlap, "n_raters": len(report["per_rater"])}


def agreement_table_csv(*, report: dict, table: str) -> str:
    """One table of a report as CSV; nested values (intervals, label counts) are flattened."""
    if table not in TABLES:
        raise DomainError(f"Unknown table {table!r}: use one of {', '.join(TABLES)}.")
    rows = {"pairwise": report["cohen_kappa"], "per_rater": report["per_rater"], "disputed": report["disputed"],
            "criteria": report["criteria"]}[table]
    return rows_csv(rows)


def agreement_download_record(*, actor, what: str, batch: Batch | None = None, level: str | None = None) -> None:
    """Audit one download of an agreement table (per-rater figures name physicians)."""
    audit_record(actor=actor, action="agreement.downloaded", obj=batch if batch is not None else actor,
                 batch=batch, data={"table": what, "level": level})


def rows_csv(rows: list[dict]) -> str:
    """Rows of a report table (or of the trend) as CSV: intervals become _low/_high columns, nested
    objects prefixed columns, dates ISO 8601; text cells spreadsheet-safe (annotation.spreadsheet)."""
    flat = [_flatten(row) for row in rows]
    columns = list(dict.fromkeys(k for row in flat for k in row)) or ["empty"]
    return csv_text(flat, columns)


def _flatten(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value) and key.endswith("_ci"):
            flat[f"{key}_low"], flat[f"{key}_high"] = value
        elif isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = "; ".join(map(str, value))
        elif hasattr(value, "isoformat"):
            flat[key] = value.isoformat()
        else:
            flat[key] = "" if value is None else value
    return flat


def agreement_trend(*, batches=None) -> list[dict]:
    """Headline figures of each batch that has judgments, oldest first: kappa over time.

    Read from the cached reports (their `headline` column), never recomputed here: a batch
    whose report is missing or out of date gets it queued, and shows its last figures marked
    stale meanwhile (or is left out until the first report exists)."""
    if batches is None:
        batches = Batch.objects.exclude(state=BatchState.DRAFT).filter(judgment_rows__gt=0)
    batches = list(batches)
    current = {b.pk: _fingerprint(data_version=b.data_version) for b in batches}
    def stored() -> dict[int, tuple[str, dict]]:
        return headlines_stored(batch_ids=list(current))
    reports = stored()
    queued = [b for b in batches if reports.get(b.pk, ("",))[0] != current[b.pk]]
    for batch in queued:
        agreement_report_queue(batch=batch, level=DEFAULT_LEVEL, fingerprint=current[batch.pk])
    if queued and settings.CELERY_TASK_ALWAYS_EAGER:
        reports = stored()  # without a broker the reports were computed just now
    points = []
    for batch in sorted(batches, key=lambda b: (b.closed_at or b.opened_at or b.created_at, b.pk)):
        if batch.pk not in reports:
            continue
        fingerprint, headline = reports[batch.pk]
        gate = gate_from_headline(headline, batch=batch)
        points.append({
            "batch": batch.pk, "name": batch.name, "state": batch.state, "min_alpha": batch.min_alpha,
            "opened_at": batch.opened_at, "closed_at": batch.closed_at, "created_at": batch.created_at,
            **{k: headline.get(k) for k in HEADLINE_KEYS},
            "gate_passed": gate["passed"], "gate_status": gate["status"],
            "stale": fingerprint != current[batch.pk],
        })
    return points


def headlines_stored(*, batch_ids: list[int], level: str = DEFAULT_LEVEL) -> dict[int, tuple[str, dict]]:
    """The newest stored report headline of each batch, {batch_id: (fingerprint, headline)}: one
    query over the reports' small `headline` column, never their payloads."""
    rows = (AgreementReport.objects.filter(batch_id__in=batch_ids, level=level)
            .order_by("computed_at", "id").values_list("batch_id", "fingerprint", "headline"))
    return {batch_id: (fingerprint, headline) for batch_id, fingerprint, headline in rows}  # newest wins


def batch_gates_stored(*, batches) -> dict[int, dict]:
    """Where each batch stands against its agreement gate, from the stored headlines only (a page
    view never computes or queues a report): {batch_id: {"status", "stale"}}. status is passed,
    failed or not_enough_data; a batch without judgments has not enough data; one with judgments
    but no report yet has status None (its agreement page computes it)."""
    batches = list(batches)
    reports = headlines_stored(batch_ids=[b.pk for b in batches])
    out = {}
    for batch in batches:
        if batch.pk in reports:
            fingerprint, headline = reports[batch.pk]
            out[batch.pk] = {"status": gate_from_headline(headline, batch=batch)["status"],
                             "stale": fingerprint != _fingerprint(data_version=batch.data_version)}
        else:
            out[batch.pk] = {"status": GATE_NOT_ENOUGH_DATA if not batch.judgment_rows else None, "stale": False}
    return out
