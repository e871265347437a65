"""Shared by bench/scale.py and tests/annotation/test_scale_growth.py: seed a PostgreSQL
database fast (COPY, explicit ids, counters rebuilt once), list every GET URL of the API and the
dashboard per role, and request one while counting its SQL queries and EXPLAINing each, to find
plans that read a whole table of pairs, judgments or assignments."""

import hashlib
import io
import json
import time
from datetime import timedelta
from dataclasses import dataclass, field

BIG_TABLES = ("annotation_pair", "annotation_judgment", "annotation_assignment")


# ---------------------------------------------------------------- seeding

@dataclass
class Seeded:
    big_batch: int
    batches: list[int]
    admin: object
    physician: object
    pair: int = 0
    judgment: int = 0
    assignment: int = 0
    export: int = 0
    run: int = 0
    rater_user: int = 0
    counts: dict = field(default_factory=dict)


def _copy(cur, table: str, columns: list[str], rows) -> int:
    """COPY text-format rows (tuples; None is NULL) into `table`; returns how many."""
    n = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for row in rows:
            buf.write("\t".join("\\N" if v is None else str(v) for v in row))
            buf.write("\n")
            n += 1
            if buf.tell() > 4_000_000:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    return n


def _next_id(cur, table: str) -> int:
    cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
    return cur.fetchone()[0]


def _sync_sequence(cur, table: str) -> None:
    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM {table}))")


def seed(*, batch_sizes: list[int], specialties: int = 4, raters: int = 200, leases: int = 10_000, exports: int = 50,
         runs: int = 50, big_raters_per_pair: int = 4, log=lambda msg: None) -> Seeded:
    """Batches of the given sizes (the first is "big": open, raters_per_pair=big_raters_per_pair, so
    it still has a free slot per pair), spread over `specialties`; every regular pair judged by 3
    raters of its specialty; `leases` live leases on the big batch; exports and training runs."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.labeling.services import batch_counters_recount
    from annotation.models import Batch, BatchState, Profile, Role, Specialty

    user_model = get_user_model()
    now = timezone.now()
    stamp = now.isoformat()
    specs = [Specialty.objects.get_or_create(slug=f"scale-{i}", defaults={"name": f"Scale specialty {i}"})[0] for i in range(specialties)]
    admin, _ = user_model.objects.get_or_create(username="scale_admin", defaults={"is_staff": True})
    admin.set_password("scale-admin-pw")
    admin.save()
    Profile.objects.update_or_create(user=admin, defaults={"role": Role.ADMIN, "specialty": specs[0]})
    per_spec = max(raters // specialties, 4)
    doctors: dict[int, list[int]] = {}
    for s_i, spec in enumerate(specs):
        ids = []
        for r in range(per_spec):
            user, _ = user_model.objects.get_or_create(username=f"scale_dr_{s_i}_{r}")
            Profile.objects.update_or_create(user=user, defaults={"role": Role.PHYSICIAN, "specialty": spec})
            ids.append(user.pk)
        doctors[spec.pk] = ids
    states = [BatchState.OPEN, BatchState.CLOSED, BatchState.EXPORTED, BatchState.OPEN, BatchState.DRAFT]
    batches = []
    for i, size in enumerate(batch_sizes):
        batch = Batch.objects.create(
            name=f"scale-{i}-{size}", specialty=specs[i % specialties], state=BatchState.OPEN if i == 0 else states[i % len(states)],
            raters_per_pair=big_raters_per_pair if i == 0 else 3, created_by=admin, opened_at=now, calibration_rate=0.0,
        )
        batches.append((batch, size))

    with transaction.atomic(), connection.cursor() as django_cur:
        cur = django_cur.cursor
        first_pair = _next_id(cur, "annotation_pair")
        for batch, size in batches:
            t0 = time.perf_counter()
            _pairs_copy(cur, batch=batch, judges=doctors[batch.specialty_id], size=size, judged=batch.state != BatchState.DRAFT, stamp=stamp)
            log(f"  seeded {batch.name}: {size:,} pairs in {time.perf_counter() - t0:.1f} s")
        assignment_id = _next_id(cur, "annotation_assignment")
        big, big_size = batches[0]
        big_judges = doctors[big.specialty_id]
        n_leases = min(leases, big_size)
        expires = (now + timedelta(hours=2)).isoformat()
        # A fourth rater of the specialty (not among the pair's three judges) holds a lease on the pair.
        _copy(cur, "annotation_assignment", ["id", "pair_id", "rater_id", "batch_id", "a_shown_first", "status", "is_calibration",
                                             "leased_at", "expires_at", "finished_at", "skip_reason"],
              ((assignment_id + i, first_pair + i, big_judges[(i + 21) % len(big_judges)], big.pk, True, "leased", False, stamp,
                expires, None, "") for i in range(n_leases)))
        cur.execute("UPDATE annotation_pair SET open_slots = open_slots - 1 WHERE id >= %s AND id < %s", [first_pair, first_pair + n_leases])
        for table in ("annotation_prompt", "annotation_completion", "annotation_pair", "annotation_assignment", "annotation_judgment"):
            _sync_sequence(cur, table)
    batch_counters_recount()
    export_ids, run_ids = _exports_and_runs(batches=[b for b, _ in batches], admin=admin, exports=exports, runs=runs)
    _vacuum_analyze(BIG_TABLES + ("annotation_batch", "annotation_profile", "annotation_prompt", "annotation_completion"))
    physician = user_model.objects.get(pk=big_judges[0])
    from annotation.models import Assignment, Judgment, Pair

    return Seeded(
        big_batch=big.pk, batches=[b.pk for b, _ in batches], admin=admin, physician=physician,
        pair=first_pair, judgment=Judgment.objects.filter(rater=physician).values_list("pk", flat=True).first() or 0,
        assignment=Assignment.objects.filter(rater=physician).values_list("pk", flat=True).first() or 0,
        export=export_ids[0] if export_ids else 0, run=run_ids[0] if run_ids else 0, rater_user=physician.pk,
        counts={"pairs": Pair.objects.count(), "batches": len(batches), "leases": n_leases},
    )


def _pairs_copy(cur, *, batch, judges: list[int], size: int, judged: bool, stamp: str, offset: int = 0) -> None:
    """COPY `size` pairs (with their prompts and completions) into `batch`, each judged by 3 of
    `judges` when `judged`; ids continue each table's largest."""
    p0, c0, q0 = (_next_id(cur, t) for t in ("annotation_prompt", "annotation_completion", "annotation_pair"))
    a0, j0 = _next_id(cur, "annotation_assignment"), _next_id(cur, "annotation_judgment")
    _copy(cur, "annotation_prompt", ["id", "text", "text_sha256", "external_id", "metadata", "created_at"],
          ((p0 + i, f"Patient {offset + i} of {batch.name}: chest pain for {i % 48} h?", hashlib.sha256(str(i).encode()).hexdigest(),
            "", "{}", stamp) for i in range(size)))
    _copy(cur, "annotation_completion", ["id", "prompt_id", "text", "model_name", "model_version", "external_id"],
          ((c0 + k, p0 + k // 2, f"{'Urgent ECG' if k % 2 == 0 else 'Rest'} ({k // 2}).", "m-a" if k % 2 == 0 else "m-b", "", "")
           for k in range(2 * size)))
    n_judges = 3 if judged else 0
    _copy(cur, "annotation_pair", ["id", "batch_id", "prompt_id", "completion_a_id", "completion_b_id", "external_id", "fingerprint",
                                   "gold_preference", "metadata", "open_slots", "judgments_count"],
          ((q0 + i, batch.pk, p0 + i, c0 + 2 * i, c0 + 2 * i + 1, f"ext-{offset + i}", f"{batch.pk}-{offset + i}", None, "{}",
            batch.raters_per_pair - n_judges, n_judges) for i in range(size)))

    def who(i, k):
        return judges[(i + 7 * k) % len(judges)]

    if judged:
        _copy(cur, "annotation_assignment", ["id", "pair_id", "rater_id", "batch_id", "a_shown_first", "status", "is_calibration",
                                             "leased_at", "expires_at", "finished_at", "skip_reason"],
              ((a0 + 3 * i + k, q0 + i, who(i, k), batch.pk, (i + k) % 2 == 0, "submitted", False, stamp, stamp, stamp, "")
               for i in range(size) for k in range(3)))
        _copy(cur, "annotation_judgment", ["id", "assignment_id", "pair_id", "batch_id", "rater_id", "revision", "supersedes_id",
                                           "is_current", "preference", "criteria", "flags", "a_unsafe", "b_unsafe",
                                           "both_unacceptable", "harm_severity", "error_spans", "rationale", "time_spent_ms",
                                           "a_shown_first", "idempotency_key", "created_at"],
              ((j0 + 3 * i + k, a0 + 3 * i + k, q0 + i, batch.pk, who(i, k), 1, None, True,
                ((i % 5) - 2) if k < 2 or i % 3 else ((i + k) % 5) - 2,
                json.dumps({"safety": (i % 5) - 2}), '{"a": [], "b": []}', False, False, False, "none", "[]", "",
                20_000 + (i * 37 + k) % 40_000, (i + k) % 2 == 0, f"scale-{q0 + i}-{k}", stamp)
               for i in range(size) for k in range(3)))


def grow(seeded: "Seeded", *, extra: int) -> None:
    """Add `extra` judged pairs to the big batch (the growth test's second size)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.labeling.services import batch_counters_recount
    from annotation.models import Batch, Profile

    batch = Batch.objects.get(pk=seeded.big_batch)
    # Other raters judge the new pairs: what grows is the batch, not the probed physician's own
    # work (which a human's pace bounds, and which their pages do read through their indexes).
    judges = list(Profile.objects.filter(specialty_id=batch.specialty_id, role="physician").exclude(user_id=seeded.physician.pk)
                  .order_by("user_id").values_list("user_id", flat=True))
    offset = batch.pairs_count
    with transaction.atomic(), connection.cursor() as django_cur:
        _pairs_copy(django_cur.cursor, batch=batch, judges=judges, size=extra, judged=True, stamp=timezone.now().isoformat(), offset=offset)
        for table in ("annotation_prompt", "annotation_completion", "annotation_pair", "annotation_assignment", "annotation_judgment"):
            _sync_sequence(django_cur.cursor, table)
    batch_counters_recount()
    _vacuum_analyze(BIG_TABLES)


def _vacuum_analyze(tables) -> None:
    """What autovacuum would have done by the time a real table got this big: statistics for the
    planner and a visibility map, so index-only scans stay index-only. VACUUM cannot run inside a
    transaction (a test's): there, ANALYZE alone."""
    from django.db import connection

    with connection.cursor() as cur:
        for table in tables:
            cur.execute(f"{'ANALYZE' if connection.in_atomic_block else 'VACUUM ANALYZE'} {table}")


def _exports_and_runs(*, batches, admin, exports: int, runs: int) -> tuple[list[int], list[int]]:
    from annotation.models import ExportSnapshot
    from training.models import RunKind, TrainingPipeline, TrainingRun

    snapshots = ExportSnapshot.objects.bulk_create([
        ExportSnapshot(batch=batches[i % len(batches)], version=1000 + i, params={"policy": "majority"}, params_sha256=f"{i:064d}",
                       manifest={"pairs": 0}, files=[], created_by=admin) for i in range(exports)
    ])
    pipelines = TrainingPipeline.objects.bulk_create([
        TrainingPipeline(export=snapshots[i % len(snapshots)], spec="reward_model", created_by=admin) for i in range(min(runs, len(snapshots)) if snapshots else 0)
    ])
    run_rows = TrainingRun.objects.bulk_create([
        TrainingRun(pipeline=pipelines[i % len(pipelines)], kind=RunKind.values[0], export=pipelines[i % len(pipelines)].export,
                    created_by=admin, is_demo=True) for i in range(runs if pipelines else 0)
    ])
    return [s.pk for s in snapshots], [r.pk for r in run_rows]


# ---------------------------------------------------------------- URLs

def get_urls(s: Seeded) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label, url, roles that may GET it): every GET page and endpoint, on the big batch."""
    b, both, admin, doc = s.big_batch, ("admin", "physician"), ("admin",), ("physician",)
    return [
        ("api me", "/api/me/", both),
        ("api batches", "/api/batches/", admin),
        ("api batch", f"/api/batches/{b}/", admin),
        ("api assignments", "/api/assignments/", both),
        ("api assignment", f"/api/assignments/{s.assignment}/", doc),
        ("api judgments", "/api/judgments/", both),
        ("api judgments of batch", f"/api/judgments/?batch={b}", admin),
        ("api raters", "/api/raters/", admin),
        ("api specialties", "/api/specialties/", both),
        ("api audit", "/api/audit/", admin),
        ("api agreement", f"/api/batches/{b}/agreement/", admin),
        ("api agreement csv", f"/api/batches/{b}/agreement/?format=csv&table=per_rater", admin),
        ("api agreement trend", "/api/agreement/trend/", admin),
        ("api agreement trend csv", "/api/agreement/trend/?format=csv", admin),
        ("api disputes", f"/api/batches/{b}/disputes/", admin),
        ("api pair adjudication", f"/api/pairs/{s.pair}/adjudication/", admin),
        ("api exports", "/api/exports/", admin),
        ("api export", f"/api/exports/{s.export}/", admin),
        ("api training runs", "/api/training-runs/", admin),
        ("api training run", f"/api/training-runs/{s.run}/", admin),
        ("home / queue", "/", doc),
        ("label page", f"/label/{b}/", doc),
        ("judgment review", f"/judgments/{s.judgment}/", doc),
        ("dashboard", "/dashboard/", admin),
        ("dashboard batch", f"/dashboard/batches/{b}/", admin),
        ("dashboard raters", "/dashboard/raters/", admin),
        ("dashboard audit", "/dashboard/audit/", admin),
        ("dashboard agreement", f"/dashboard/batches/{b}/agreement/", admin),
        ("dashboard agreement trend", "/dashboard/agreement/", admin),
        ("dashboard exports", "/dashboard/exports/", admin),
        ("dashboard training", "/dashboard/training/", admin),
        ("dashboard training run", f"/dashboard/training/{s.run}/", admin),
        ("adjudicate", f"/adjudicate/?batch={b}", admin),
        ("adjudicate pair", f"/adjudicate/pairs/{s.pair}/", admin),
        ("api batch phi review", f"/api/batches/{b}/phi/", admin),
        ("api rounds", "/api/rounds/", admin),
        ("dashboard rounds", "/dashboard/rounds/", admin),
        ("judgment correct", f"/judgments/{s.judgment}/correct/", doc),
    ]


# ---------------------------------------------------------------- probing

class QueryRecorder:
    """connection.execute_wrapper that keeps each SELECT's SQL and parameters."""

    def __init__(self):
        self.queries: list[tuple[str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        self.queries.append((sql, params))
        return execute(sql, params, many, context)


def _seq_scans(plan: dict, found: list[str]) -> list[str]:
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in BIG_TABLES:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        _seq_scans(child, found)
    return found


def seq_scanned_tables(queries, *, forbid_seqscan: bool) -> list[tuple[str, str]]:
    """(table, sql) for each plan that reads a whole pairs/judgments/assignments table.
    forbid_seqscan: plan with enable_seqscan=off, so a seq scan that remains is one no index
    can replace (on small test tables the planner would pick seq scans by cost alone)."""
    from django.db import connection

    out = []
    with connection.cursor() as cur:
        if forbid_seqscan:
            cur.execute("SET enable_seqscan = off")
        try:
            for sql, params in queries:
                head = sql.lstrip().upper()
                if not (head.startswith("SELECT") or head.startswith("WITH")) or "FOR UPDATE" in head:
                    continue
                cur.execute("EXPLAIN (FORMAT JSON) " + sql, params)
                plan = cur.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                for table in _seq_scans(plan[0]["Plan"], []):
                    out.append((table, sql[:200]))
        finally:
            if forbid_seqscan:
                cur.execute("SET enable_seqscan = on")
    return out


def blocks_read(queries, *, per_query: list | None = None) -> int:
    """Shared buffers (8 kB pages) the SELECTs touch, from EXPLAIN (ANALYZE, BUFFERS): the work a
    request does in the database, which must not grow with the batch (the clock-free measure)."""
    from django.db import connection

    total = 0
    with connection.cursor() as cur:
        for sql, params in queries:
            head = sql.lstrip().upper()
            if not (head.startswith("SELECT") or head.startswith("WITH")) or "FOR UPDATE" in head:
                continue
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
            plan = cur.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            top = plan[0]["Plan"]
            blocks = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            total += blocks
            if per_query is not None:
                per_query.append((blocks, sql[:300]))
    return total


def probe(client, url: str) -> tuple[int, float, list]:
    """(status, milliseconds, [(sql, params)]) of one GET."""
    from django.db import connection

    recorder = QueryRecorder()
    with connection.execute_wrapper(recorder):
        t0 = time.perf_counter()
        resp = client.get(url)
        elapsed = (time.perf_counter() - t0) * 1000
    return resp.status_code, elapsed, recorder.queries
