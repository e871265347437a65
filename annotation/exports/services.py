"""Exports, Django side: stream a batch's judgments out of the database into the pure
aggregation/writers of exports.py, store the files through Django's storage API and record an
immutable, versioned ExportSnapshot.

The training pipeline calls `export_create` (after a batch closes, with `export_default_params()`)
and reads files back with `export_open_file`, which goes through the storage backend: a worker on
another host never needs a local path. The reads (`export_list`, `export_get`) live here too,
next to the only writes they serve."""

from __future__ import annotations

import array
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from annotation import exports
from annotation.audit import audit_record
from annotation.labeling.services import batch_transition
from annotation.errors import Conflict, DomainError, NotFound
from annotation.models import Adjudication, Batch, BatchState, ExportSnapshot, Judgment, Pair, Profile

logger = logging.getLogger(__name__)

# Bumped when the meaning of an output column or a policy changes; git describe adds the commit.
EXPORT_CODE_VERSION = "clinpref-export/1"
# Rows fetched per round trip of each server-side cursor: large enough to amortise the
# round trips, small enough to keep memory flat (a few MB of text per chunk).
CHUNK_ROWS = 5_000
# False: every export takes the reference path (export_write over PairVotes) even where the fast
# trl-jsonl writer applies; for the tests and the benchmark that compare the two.
FAST_PATH = True

ProgressFn = Callable[[int, int], None]


def export_default_params() -> dict:
    """What a batch close exports: majority vote, every format, a 10% prompt-grouped test split."""
    return exports.ExportParams(formats=tuple(exports.FORMATS)).to_dict()


def export_params_validate(*, params: dict) -> exports.ExportParams:
    try:
        return exports.ExportParams.from_dict(params)
    except (exports.ExportParamsError, TypeError) as exc:
        raise DomainError(str(exc)) from exc


@lru_cache(maxsize=1)
def _code_version() -> str:
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"], cwd=settings.BASE_DIR,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        described = ""
    return f"{EXPORT_CODE_VERSION}+{described}" if described else EXPORT_CODE_VERSION


def _agreement_figures(batch: Batch) -> dict:
    """Agreement figures from annotation.agreement.services when that module offers them;
    an export never fails for want of them."""
    try:
        from annotation.agreement import services as agreement_reports  # noqa: PLC0415 - optional, written by another part
    except ImportError:
        return {"available": False, "reason": "annotation.agreement.services is not installed"}
    for name in ("agreement_report_for_batch", "agreement_summary", "agreement_report_summary"):
        fn = getattr(agreement_reports, name, None)
        if fn is None:
            continue
        try:
            figures = fn(batch=batch)
            return json.loads(json.dumps(figures, default=str))
        except Exception as exc:  # an agreement bug must not block a dataset
            logger.warning("export.agreement_unavailable", exc_info=True)
            return {"available": False, "reason": f"{name} failed: {exc}"}
    return {"available": False, "reason": "annotation.agreement.services exposes no summary function"}


def _pair_rows(batch: Batch):
    return (
        Pair.objects.filter(batch=batch).order_by("id")
        .values_list("id", "batch_id", "prompt__text_sha256", "prompt__text", "completion_a__text",
                     "completion_b__text", "gold_preference")
        .iterator(chunk_size=CHUNK_ROWS)
    )


def _vote_rows(batch: Batch):
    # Ordered by pair so the votes of a pair are contiguous and merge with the pair stream.
    return (
        Judgment.objects.filter(batch=batch, is_current=True).order_by("pair_id", "rater_id")
        .values_list("pair_id", "rater_id", "preference", "a_unsafe", "b_unsafe", "both_unacceptable", "flags")
        .iterator(chunk_size=CHUNK_ROWS)
    )


def _adjudication_rows(batch: Batch):
    # Newest first within a pair: the merge keeps the first one it sees.
    return (
        Adjudication.objects.filter(pair__batch=batch).order_by("pair_id", "-created_at", "-id")
        .values_list("pair_id", "preference", "a_unsafe", "b_unsafe")
        .iterator(chunk_size=CHUNK_ROWS)
    )


def _pg_pair_rows_sql(*, summarised: bool) -> str:
    from annotation.models import Completion, Prompt

    t = {m.__name__: m._meta.db_table for m in (Pair, Judgment, Adjudication, Prompt, Completion)}
    by_rater = "ORDER BY j.rater_id"
    if summarised:
        vote_cols = "v.n_a, v.n_tie, v.n_b, v.pref_sum, v.any_a, v.any_b, v.any_both, v.flags"
        vote_aggs = """count(*) FILTER (WHERE j.preference < 0) AS n_a, count(*) FILTER (WHERE j.preference = 0) AS n_tie,
                   count(*) FILTER (WHERE j.preference > 0) AS n_b, sum(j.preference) AS pref_sum,
                   bool_or(j.a_unsafe) AS any_a, bool_or(j.b_unsafe) AS any_b, bool_or(j.both_unacceptable) AS any_both,
                   array_agg(j.flags::text) FILTER (WHERE j.flags <> '{}'::jsonb) AS flags"""
    else:
        vote_cols = "v.raters, v.prefs, v.a_unsafe, v.b_unsafe, v.both, v.flags"
        vote_aggs = f"""array_agg(j.rater_id {by_rater}) AS raters, array_agg(j.preference {by_rater}) AS prefs,
                   array_agg(j.a_unsafe {by_rater}) AS a_unsafe, array_agg(j.b_unsafe {by_rater}) AS b_unsafe,
                   array_agg(j.both_unacceptable {by_rater}) AS both,
                   array_agg(CASE WHEN j.flags = '{{}}'::jsonb THEN NULL ELSE j.flags::text END {by_rater}) AS flags"""
    return f"""
        SELECT p.id, p.batch_id, pr.text_sha256, pr.text, ca.text, cb.text, p.gold_preference,
               {vote_cols}, adj.preference, adj.a_unsafe, adj.b_unsafe
        FROM {t["Pair"]} p
        JOIN {t["Prompt"]} pr ON pr.id = p.prompt_id
        JOIN {t["Completion"]} ca ON ca.id = p.completion_a_id
        JOIN {t["Completion"]} cb ON cb.id = p.completion_b_id
        LEFT JOIN (
            SELECT j.pair_id, {vote_aggs}
            FROM {t["Judgment"]} j
            WHERE j.batch_id = %(batch)s AND j.is_current
            GROUP BY j.pair_id
        ) v ON v.pair_id = p.id
        LEFT JOIN LATERAL (
            SELECT a.preference, a.a_unsafe, a.b_unsafe FROM {t["Adjudication"]} a
            WHERE a.pair_id = p.id ORDER BY a.created_at DESC, a.id DESC LIMIT 1
        ) adj ON TRUE
        WHERE p.batch_id = %(batch)s
        ORDER BY p.id
    """


def _pg_fast_rows_sql() -> str:
    """One row per pair for exports.export_write_trl_jsonl: id and texts, then the
    decision key: the votes summarised (vetoes folded with both_unacceptable, non-empty flags as
    one JSON array) and the newest adjudication (DISTINCT ON, merge-joined: no probe per pair).
    The texts come raw: Python's escaper costs the main thread less than to_json costs
    PostgreSQL, the busier of the two."""
    from annotation.models import Completion, Prompt

    t = {m.__name__: m._meta.db_table for m in (Pair, Judgment, Adjudication, Prompt, Completion)}
    return f"""
        SELECT p.id, pr.text, ca.text, cb.text,
               p.gold_preference IS NOT NULL, v.n_a, v.n_tie, v.n_b, v.pref_sum, v.veto_a, v.veto_b, v.flags,
               adj.preference, adj.a_unsafe, adj.b_unsafe
        FROM {t["Pair"]} p
        JOIN {t["Prompt"]} pr ON pr.id = p.prompt_id
        JOIN {t["Completion"]} ca ON ca.id = p.completion_a_id
        JOIN {t["Completion"]} cb ON cb.id = p.completion_b_id
        LEFT JOIN (
            SELECT j.pair_id, count(*) FILTER (WHERE j.preference < 0) AS n_a,
                   count(*) FILTER (WHERE j.preference = 0) AS n_tie, count(*) FILTER (WHERE j.preference > 0) AS n_b,
                   sum(j.preference) AS pref_sum, bool_or(j.a_unsafe OR j.both_unacceptable) AS veto_a,
                   bool_or(j.b_unsafe OR j.both_unacceptable) AS veto_b,
                   (jsonb_agg(j.flags) FILTER (WHERE j.flags <> '{{}}'::jsonb))::text AS flags
            FROM {t["Judgment"]} j
            WHERE j.batch_id = %(batch)s AND j.is_current
            GROUP BY j.pair_id
        ) v ON v.pair_id = p.id
        LEFT JOIN (
            SELECT DISTINCT ON (a.pair_id) a.pair_id, a.preference, a.a_unsafe, a.b_unsafe
            FROM {t["Adjudication"]} a JOIN {t["Pair"]} ap ON ap.id = a.pair_id
            WHERE ap.batch_id = %(batch)s
            ORDER BY a.pair_id, a.created_at DESC, a.id DESC
        ) adj ON adj.pair_id = p.id
        WHERE p.batch_id = %(batch)s
        ORDER BY p.id
    """


def _pg_chunks(sql: str, params, *, name: str):
    """Lists of rows of `sql` through a server-side cursor read by a reader thread: PostgreSQL
    (on its own core) produces the next chunk while this thread decides and writes the current
    one, and no ORM converter runs on the hot path. Call inside a transaction (the named cursor
    lives in it); the Django connection must not be used by anyone else until the generator is
    exhausted or closed."""
    import queue
    import threading

    connection.ensure_connection()
    cur = connection.connection.cursor(name=name)
    chunks: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    done = object()

    def read():
        try:
            cur.execute(sql, params)
            while not stop.is_set():
                rows = cur.fetchmany(CHUNK_ROWS)
                while not stop.is_set():
                    try:
                        chunks.put(rows or done, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if not rows:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            chunks.put(exc)

    reader = threading.Thread(target=read, name="export-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = chunks.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()
        cur.close()


def _raw_chunks(sql: str, params, *, name: str):
    """Lists of rows of `sql`: on PostgreSQL through _pg_chunks (server-side, read ahead; a
    client-side cursor would hold the whole result, ~100 MB a million pairs), elsewhere
    through a plain cursor's fetchmany."""
    if connection.vendor == "postgresql":
        yield from _pg_chunks(sql, params, name=name)
        return
    with connection.cursor() as cur:
        cur.execute(sql, params)
        while rows := cur.fetchmany(CHUNK_ROWS):
            yield rows


def _pg_pair_rows(batch: Batch, *, summarised: bool):
    """One row per pair, votes gathered into arrays (or summaries) by PostgreSQL: 4x fewer rows
    than one per vote."""
    for chunk in _pg_chunks(_pg_pair_rows_sql(summarised=summarised), {"batch": batch.pk},
                            name=f"export_pairs_{batch.pk}"):
        yield from chunk


def _pairs_stream(batch: Batch, *, per_vote: bool, veto_flags: tuple[str, ...], backend: str | None = None):
    """PairVotes of the batch in pair id order. On PostgreSQL the votes are aggregated by the
    database: into per-pair summaries when no rater is filtered and no per-rater weight is used
    (the common, fast case), into per-pair arrays otherwise. Elsewhere (SQLite in development)
    three ORM streams are merged. Every path decides identically (tests compare them)."""
    backend = backend or ("postgresql" if connection.vendor == "postgresql" else "orm")
    if backend == "postgresql" and not per_vote:
        return exports.iter_pairs_summarised(_pg_pair_rows(batch, summarised=True), veto_flags)
    if backend == "postgresql":
        return exports.iter_pairs_aggregated(_pg_pair_rows(batch, summarised=False))
    return exports.iter_pairs(_pair_rows(batch), _vote_rows(batch), _adjudication_rows(batch))


def _pair_prompt_keys(batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair id, prompt key, is calibration) of every pair of the batch, as compact arrays
    (17 bytes a pair): raw rows rather than the ORM iterator for a million of them."""
    sql, sql_params = (Pair.objects.filter(batch=batch).values_list("id", "prompt__text_sha256", "gold_preference")
                       .query.sql_with_params())
    pair_ids, keys, calibration = array.array("q"), array.array("q"), array.array("b")
    for rows in _raw_chunks(sql, sql_params, name=f"export_keys_{batch.pk}"):
        pair_ids.extend([r[0] for r in rows])
        keys.extend(exports.prompt_keys_from_sha256([r[1] for r in rows]))
        calibration.extend([r[2] is not None for r in rows])

    def arr(a, dtype):
        return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype=dtype)

    return arr(pair_ids, np.int64), arr(keys, np.int64), arr(calibration, np.int8).astype(bool)


def _vote_arrays(batch: Batch, *, with_prompt: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(pair_id, rater_id, direction[, prompt_key]) of every current vote, as compact arrays:
    ~20 bytes a vote, what the kappa filter and Dawid-Skene need to hold at once."""
    pair_ids, rater_ids, dirs, prompts = array.array("q"), array.array("q"), array.array("b"), array.array("q")
    fields = ["pair_id", "rater_id", "preference"] + (["pair__prompt__text_sha256"] if with_prompt else [])
    qs = Judgment.objects.filter(batch=batch, is_current=True).order_by("pair_id", "rater_id").values_list(*fields)
    for row in qs.iterator(chunk_size=CHUNK_ROWS):
        pair_ids.append(row[0])
        rater_ids.append(row[1])
        dirs.append(exports.direction(row[2]))
        if with_prompt:
            prompts.append(exports.prompt_key_from_sha256(row[3]))

    def arr(a, dtype):
        return np.frombuffer(a, dtype=dtype) if len(a) else np.zeros(0, dtype=dtype)

    return arr(pair_ids, np.int64), arr(rater_ids, np.int64), arr(dirs, np.int8), arr(prompts, np.int64) if with_prompt else None


def _raters_outside_specialties(batch: Batch, specialties: tuple[str, ...]) -> frozenset[int]:
    if not specialties:
        return frozenset()
    raters = Judgment.objects.filter(batch=batch, is_current=True).values_list("rater_id", flat=True).distinct()
    allowed = Profile.objects.filter(user_id__in=raters, specialty__slug__in=specialties).values_list("user_id", flat=True)
    return frozenset(raters) - frozenset(allowed)


def _fast_path_applies(params: exports.ExportParams, *, per_vote: bool) -> bool:
    """Whether exports.export_write_trl_jsonl can write this export: PostgreSQL, trl-jsonl alone,
    votes summarised in the database. It writes the same bytes as export_write (tests compare);
    FAST_PATH = False forces the reference path (tests, bench/export.py --reference)."""
    return (FAST_PATH and connection.vendor == "postgresql" and params.formats == ("trl-jsonl",) and not per_vote
            and not params.needs_vote_prepass)


class _ReadSnapshot:
    """One consistent view of the batch for every query of the export. On PostgreSQL outside
    any transaction, REPEATABLE READ makes the pre-pass, the split and the main pass see the
    same judgments even while raters keep submitting; inside a caller's transaction (tests,
    the batch-closed handler) we simply join it."""

    def __enter__(self):
        self._atomic = transaction.atomic()
        set_isolation = connection.vendor == "postgresql" and not connection.in_atomic_block
        self._atomic.__enter__()
        if set_isolation:
            with connection.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                # The export's plans cost enough to trigger JIT compilation, which spends seconds
                # of CPU on streaming nested-loop plans that gain nothing from it.
                cur.execute("SET LOCAL jit = off")
        return self

    def __exit__(self, *exc):
        return self._atomic.__exit__(*exc)


def _build(*, batch: Batch, params: exports.ExportParams, out_dir: str, progress: ProgressFn | None) -> dict:
    """Run the export into out_dir; return what the manifest says about the data."""
    extra: dict = {}
    with _ReadSnapshot():
        total = Pair.objects.filter(batch=batch).count()
        by_specialty = _raters_outside_specialties(batch, params.specialties)
        excluded = by_specialty
        if by_specialty:
            extra["excluded_raters_specialty"] = sorted(by_specialty)
        # The fast path never filters raters by kappa, so `excluded` is final for it here.
        fast = _fast_path_applies(params, per_vote=bool(excluded) or params.rater_disjoint_test
                                  or params.policy == "dawid_skene")
        test_prompts: frozenset[int] = frozenset()
        test_pairs: frozenset[int] = frozenset()
        if params.test_fraction > 0:
            pair_ids, keys, calibration = _pair_prompt_keys(batch)
            test_prompts = exports.split_test_prompts(
                keys if params.include_calibration or not calibration.any() else keys[~calibration],
                test_fraction=params.test_fraction, seed=params.seed)
            if fast and test_prompts:
                # The same split by pair id, for the fast path: a set lookup per pair, not a hash.
                # searchsorted rather than isin: a third of isin's temporary memory at 1M pairs.
                test_sorted = np.sort(np.fromiter(test_prompts, dtype=np.int64, count=len(test_prompts)))
                slot = np.minimum(np.searchsorted(test_sorted, keys), len(test_sorted) - 1)
                test_pairs = frozenset(pair_ids[test_sorted[slot] == keys].tolist())
                del test_sorted, slot
            del pair_ids, keys, calibration
        test_raters: frozenset[int] = frozenset()
        if params.rater_disjoint_test:
            raters = Judgment.objects.filter(batch=batch, is_current=True).values_list("rater_id", flat=True).distinct()
            test_raters = exports.split_test_raters(list(raters), fraction=params.test_rater_fraction, seed=params.seed)
            extra["test_raters"] = sorted(test_raters)
        ds = None
        if params.needs_vote_prepass:
            with_prompt = params.policy == "dawid_skene" and params.rater_disjoint_test
            pair_ids, rater_ids, dirs, prompt_keys = _vote_arrays(batch, with_prompt=with_prompt)
            if params.min_rater_kappa is not None:
                kappas = exports.rater_kappas(pair_ids, rater_ids, dirs)
                low = {r for r, k in kappas.items() if k < params.min_rater_kappa}
                excluded = excluded | frozenset(low)
                extra["rater_kappas"] = {str(r): k for r, k in sorted(kappas.items())}
                extra["excluded_raters_low_kappa"] = sorted(low)
            if params.policy == "dawid_skene":
                keep = ~np.isin(rater_ids, np.fromiter(excluded, dtype=np.int64, count=len(excluded)))
                if with_prompt:
                    # Each side's posteriors come from that side's raters only (no leak across the split).
                    in_test = np.isin(prompt_keys, np.fromiter(test_prompts, dtype=np.int64, count=len(test_prompts)))
                    by_test_rater = np.isin(rater_ids, np.fromiter(test_raters, dtype=np.int64, count=len(test_raters)))
                    keep &= in_test == by_test_rater
                ds = exports.dawid_skene(pair_ids[keep], rater_ids[keep], dirs[keep],
                                         max_iter=params.ds_max_iter, tol=params.ds_tol)
                extra["dawid_skene"] = ds.summary()
            del pair_ids, rater_ids, dirs, prompt_keys
        per_vote = bool(excluded) or params.rater_disjoint_test or params.policy == "dawid_skene"
        on_progress = (lambda done: progress(done, total)) if progress else None
        if fast:
            chunks = _pg_chunks(_pg_fast_rows_sql(), {"batch": batch.pk}, name=f"export_fast_{batch.pk}")
            result = exports.export_write_trl_jsonl(chunks, params, out_dir, batch_id=batch.pk,
                                                    test_pairs=test_pairs, progress=on_progress)
            return {"result": result, "extra": extra}
        pairs = _pairs_stream(batch, per_vote=per_vote, veto_flags=params.veto_flags)
        result = exports.export_write(
            pairs, params, out_dir, test_prompts=test_prompts, test_raters=test_raters,
            excluded_raters=excluded, ds=ds,
            progress=on_progress,
        )
    return {"result": result, "extra": extra}


def _save_to_storage(*, local_path: str, name: str) -> str:
    # A leftover of a run that failed before its snapshot committed may hold this name;
    # the version is ours (we hold the batch lock), so replace it rather than get a renamed copy.
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(local_path, "rb") as fh:
        saved = default_storage.save(name, _FinishedLocalFile(fh, name=os.path.basename(name)))
    return saved


class _FinishedLocalFile(File):
    """A complete file in our temporary folder, which is deleted afterwards: FileSystemStorage
    moves a file that has a temporary_file_path (a rename on the same filesystem) instead of
    copying it; a 500 MB export need not be written twice. Other storages read it as usual."""

    def temporary_file_path(self) -> str:
        return self.file.name


def export_create(
    *, batch: Batch | int, params: dict | None, created_by, progress: ProgressFn | None = None,
    include_agreement: bool = True,
) -> ExportSnapshot:
    """Export a batch's current judgments (and newest adjudication per pair) as a new
    versioned snapshot. Data files are byte-identical for identical params and data; only the
    manifest and card carry the version and the time. `progress(done_pairs, total_pairs)`
    is called every 10,000 pairs and at the end. include_agreement=False skips the agreement
    report (computed, or served from cache, by annotation.agreement.services) in the manifest."""
    batch_id = batch.pk if isinstance(batch, Batch) else batch
    batch = Batch.objects.select_related("specialty").filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(f"Batch {batch_id} does not exist.")
    if batch.state == BatchState.DRAFT:
        raise Conflict(f"Batch {batch.name!r} is a draft: it has no judgments to export yet. Open it first.",
                       extra={"state": batch.state})
    p = export_params_validate(params=params or {})
    tmp = tempfile.mkdtemp(prefix=f"clinpref-export-{batch.pk}-")
    saved: list[str] = []
    try:
        built = _build(batch=batch, params=p, out_dir=tmp, progress=progress)
        result: exports.ExportResult = built["result"]
        with transaction.atomic():
            # The batch row lock serialises concurrent exports of one batch: versions stay dense.
            Batch.objects.select_for_update().filter(pk=batch.pk).first()
            version = (ExportSnapshot.objects.filter(batch=batch).aggregate(v=Max("version"))["v"] or 0) + 1
            prefix = f"exports/{batch.pk}/v{version}"
            files = []
            for f in result.files:
                path = _save_to_storage(local_path=f.path, name=f"{prefix}/{f.name}")
                saved.append(path)
                files.append({**f.public(), "path": path})
            now = timezone.now()
            manifest = {
                "format_version": 1,
                "batch": {"id": batch.pk, "name": batch.name, "state": batch.state,
                          "specialty": batch.specialty.slug if batch.specialty_id else None},
                "version": version,
                "policy": p.policy,
                "params": p.to_dict(),
                "params_sha256": p.sha256(),
                "filters": {"min_rater_kappa": p.min_rater_kappa, "specialties": list(p.specialties),
                            "veto_flags": list(p.veto_flags), "include_calibration": p.include_calibration,
                            "rater_disjoint_test": p.rater_disjoint_test},
                "counts": result.counts,
                "dropped": result.dropped,
                "excluded_votes": result.excluded_votes,
                "agreement": _agreement_figures(batch) if include_agreement else {"available": False,
                                                                                   "reason": "not requested"},
                "code_version": _code_version(),
                "created_by": {"id": created_by.pk, "username": created_by.get_username()} if created_by else None,
                "created_at": now.isoformat(),
                "files": [{k: v for k, v in f.items() if k != "path"} for f in files],
                **built["extra"],
            }
            for name, text in (("README.md", exports.dataset_card(manifest=manifest)),
                               ("manifest.json", json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")):
                local = os.path.join(tmp, name)
                with open(local, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
                sha256, size = exports.file_sha256(local), os.path.getsize(local)  # before the storage moves it
                path = _save_to_storage(local_path=local, name=f"{prefix}/{name}")
                saved.append(path)
                files.append({"name": name, "sha256": sha256, "rows": None, "bytes": size,
                              "format": name.rsplit(".", 1)[1], "split": None, "path": path})
            snapshot = ExportSnapshot.objects.create(
                batch=batch, version=version, params=p.to_dict(), params_sha256=p.sha256(),
                manifest=manifest, files=files, created_by=created_by if created_by and created_by.is_authenticated else None,
            )
            audit_record(actor=created_by, action="export.created", obj=snapshot, batch=batch,
                         data={"version": version, "policy": p.policy, "params_sha256": snapshot.params_sha256,
                               "triples": result.counts["triples"]})
            if batch.state == BatchState.CLOSED:
                # The first snapshot of a closed batch publishes its training data: the batch says so.
                batch_transition(batch_id=batch.pk, to_state=BatchState.EXPORTED,
                                 actor=created_by if created_by and created_by.is_authenticated else None)
        logger.info("export.created", extra={"batch_id": batch.pk, "version": version})
        return snapshot
    except BaseException:
        for path in saved:  # the snapshot did not commit: leave no orphan files behind
            try:
                default_storage.delete(path)
            except Exception:
                logger.warning("export.cleanup_failed", exc_info=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_list(*, batch_id: int | None = None) -> QuerySet[ExportSnapshot]:
    qs = ExportSnapshot.objects.select_related("batch", "created_by").order_by("-created_at", "-id")
    return qs.filter(batch_id=batch_id) if batch_id is not None else qs


def export_get(*, export_id: int) -> ExportSnapshot:
    snapshot = ExportSnapshot.objects.select_related("batch", "created_by").filter(pk=export_id).first()
    if snapshot is None:
        raise NotFound(f"Export {export_id} does not exist.")
    return snapshot


def export_file_entry(*, snapshot: ExportSnapshot, name: str) -> dict:
    for entry in snapshot.files:
        if entry["name"] == name:
            return entry
    names = ", ".join(e["name"] for e in snapshot.files)
    raise NotFound(f"Export {snapshot.pk} has no file {name!r}. Files: {names}.")


def export_open_file(*, snapshot: ExportSnapshot, name: str) -> File:
    """Open one file of a snapshot for reading (binary) through the storage backend: works the
    same for local media and remote storage, so never assume a local path. Close it after use."""
    entry = export_file_entry(snapshot=snapshot, name=name)
    return default_storage.open(entry["path"], "rb")


def export_file_download(*, snapshot: ExportSnapshot, name: str, actor) -> File:
    """Open a snapshot's file for someone to take away, and record who took which file (exports
    carry clinical text, so every download is in the audit trail)."""
    entry = export_file_entry(snapshot=snapshot, name=name)
    audit_record(actor=actor, action="export.downloaded", obj=snapshot, batch=snapshot.batch_id,
                 data={"file": name, "sha256": entry["sha256"]})
    return export_open_file(snapshot=snapshot, name=name)


def export_file_sha256_verify(*, snapshot: ExportSnapshot, name: str) -> bool:
    """Whether the stored bytes still match the snapshot's checksum (for training workers that
    want to refuse a tampered or truncated dataset)."""
    entry = export_file_entry(snapshot=snapshot, name=name)
    h = hashlib.sha256()
    with export_open_file(snapshot=snapshot, name=name) as fh:
        for chunk in fh.chunks():
            h.update(chunk)
    return h.hexdigest() == entry["sha256"]
