"""Export throughput and memory: N judged pairs (3 current judgments each) in PostgreSQL,
exported as streaming JSONL by export_create (its fast trl-jsonl path), against the general
reference path (whose files must have the same SHA-256) and a naive ORM loop in the same run.

    .venv/bin/python bench/export.py                 # 1,000,000 pairs (loads once, ~10M rows via COPY)
    .venv/bin/python bench/export.py --n 50000       # quick run
    .venv/bin/python bench/export.py --naive-seconds 30
    .venv/bin/python bench/export.py --no-reference  # skip the general path (it runs by default)

Prints rows/s, peak RSS and CPU seconds (the export process's, and the PostgreSQL backend's
when the server runs on this machine: steadier than wall time on a shared machine) of each
side (each runs in its own child process, so each peak is its own), the load average, and the
ratios. Targets: >= 100,000 rows/s and < 300 MB RSS for the export.
The naive loop (Judgment.objects ... select_related, votes grouped in a dict, then written)
is stopped after --naive-seconds or --naive-rows; its rate is measured on what it did and its
memory is extrapolated linearly to N, and the output says so.

The database (default postgres://postgres@127.0.0.1:5432/clinpref_bench_export, override with
BENCH_DATABASE_URL) is dropped and recreated when N changes; bounded: N <= 2,000,000."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # when imported rather than run as a script
from _setup import copy_rows  # noqa: E402
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/clinpref_bench_export"
MAX_N = 2_000_000
RATERS = 3


def _setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _cpu_seconds(backend_pid: int | None) -> tuple[float, float | None]:
    """(this process's user+sys CPU, the PostgreSQL backend's when it runs on this machine):
    steadier than wall time on a shared machine."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    backend = None
    if backend_pid:
        try:
            fields = Path(f"/proc/{backend_pid}/stat").read_text().rsplit(")", 1)[1].split()
            backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        except (OSError, IndexError, ValueError):
            backend = None
    return ru.ru_utime + ru.ru_stime, backend


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _recreate_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def phase_load(url: str, n: int) -> int:
    """Load N judged pairs; return the batch id. Reuses the database when it already holds N."""
    _ensure_database(url)
    _setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    from annotation.models import Batch

    marker = f"bench-export-{n}"
    try:
        existing = Batch.objects.filter(name=marker).first()
    except Exception:
        existing = None
    if existing is not None:
        return existing.pk
    connection.close()
    _recreate_database(url)
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from annotation.models import Batch, BatchState, Profile, Role, Specialty

    t0 = time.perf_counter()
    spec = Specialty.objects.create(name="Cardiology", slug="cardiology")
    raters = []
    for i in range(RATERS):
        user = get_user_model().objects.create_user(username=f"bench_doc{i}", password="x" * 12)
        Profile.objects.create(user=user, role=Role.PHYSICIAN, specialty=spec)
        raters.append(user.pk)
    batch = Batch.objects.create(name=marker, specialty=spec, raters_per_pair=RATERS, state=BatchState.CLOSED)
    now = "2026-01-01 00:00:00+00"
    prompt_text = "Patient {i}, 58, chest pain radiating to the left arm for 40 minutes, sweating; what should I do now?"
    a_text = ("Call emergency services now. While waiting, chew 300 mg aspirin unless allergic, sit down, and do not "
              "drive yourself. Case {i}.")
    b_text = "It is probably muscular; rest, take ibuprofen and see your GP next week if it continues. Case {i}."
    import hashlib

    with connection.cursor() as django_cur:
        cur = django_cur.cursor  # the psycopg cursor: COPY support
        copy_rows(cur, "annotation_prompt", ["id", "text", "text_sha256", "external_id", "metadata", "created_at"],
              (f"{i}\t{prompt_text.format(i=i)}\t{hashlib.sha256(str(i).encode()).hexdigest()}\t\t{{}}\t{now}\n"
               for i in range(1, n + 1)))
        copy_rows(cur, "annotation_completion", ["id", "prompt_id", "text", "model_name", "model_version", "external_id"],
              (f"{2 * i - 1 + k}\t{i}\t{(a_text if k == 0 else b_text).format(i=i)}\tmodel-{'ab'[k]}\t1\t\n"
               for i in range(1, n + 1) for k in (0, 1)))
        copy_rows(cur, "annotation_pair", ["id", "batch_id", "prompt_id", "completion_a_id", "completion_b_id", "external_id",
                                       "fingerprint", "gold_preference", "metadata", "open_slots", "judgments_count"],
              (f"{i}\t{batch.pk}\t{i}\t{2 * i - 1}\t{2 * i}\t\t{i:064x}\t\\N\t{{}}\t0\t{RATERS}\n" for i in range(1, n + 1)))
        copy_rows(cur, "annotation_assignment", ["id", "pair_id", "rater_id", "batch_id", "a_shown_first", "status",
                                             "is_calibration", "leased_at", "expires_at", "finished_at", "skip_reason"],
              (f"{(i - 1) * RATERS + r + 1}\t{i}\t{raters[r]}\t{batch.pk}\t{'t' if i % 2 else 'f'}\tsubmitted\tf\t{now}\t{now}\t{now}\t\n"
               for i in range(1, n + 1) for r in range(RATERS)))
        prefs = [-2, -1, -1, 1, 0, -2, 2, -1]

        def judgment(i: int, r: int) -> str:
            pref = prefs[(i * 7 + r * 3) % len(prefs)] if r else prefs[i % len(prefs)]
            a_unsafe = "t" if i % 97 == 0 and r == 0 else "f"
            flags = '{"b": ["outdated_guidance"]}' if i % 13 == 0 else "{}"
            jid = (i - 1) * RATERS + r + 1
            return (f"{jid}\t{jid}\t{i}\t{batch.pk}\t{raters[r]}\t1\t\\N\tt\t{pref}\t{{}}\t{flags}\t{a_unsafe}\tf\tf\tnone\t[]\t\t"
                    f"30000\t{'t' if i % 2 else 'f'}\tbench-{jid}\t{now}\n")

        copy_rows(cur, "annotation_judgment", ["id", "assignment_id", "pair_id", "batch_id", "rater_id", "revision",
                                           "supersedes_id", "is_current", "preference", "criteria", "flags", "a_unsafe",
                                           "b_unsafe", "both_unacceptable", "harm_severity", "error_spans", "rationale",
                                           "time_spent_ms", "a_shown_first", "idempotency_key", "created_at"],
              (judgment(i, r) for i in range(1, n + 1) for r in range(RATERS)))
        for table in ("annotation_prompt", "annotation_completion", "annotation_pair", "annotation_assignment",
                      "annotation_judgment"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
            cur.execute(f"ANALYZE {table}")
    print(f"loaded {n:,} pairs, {n * RATERS:,} judgments via COPY in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return batch.pk


def phase_stream(url: str, batch_id: int, *, reference: bool = False) -> dict:
    """export_create on its fast path (PostgreSQL, trl-jsonl alone), or with reference=True on the
    general path (export_write over PairVotes) that the fast one must match byte for byte."""
    _setup_django(url)
    from django.conf import settings

    from annotation.exports import services as export_services

    export_services.FAST_PATH = not reference
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend_pid = cur.fetchone()[0]

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-export-media-")
    rss0 = _peak_rss_mb()
    cpu0 = _cpu_seconds(backend_pid)
    t0 = time.perf_counter()
    snap = export_services.export_create(batch=batch_id, params={"formats": ["trl-jsonl"], "test_fraction": 0.1},
                                         created_by=None, include_agreement=False)
    elapsed = time.perf_counter() - t0
    cpu1 = _cpu_seconds(backend_pid)
    rows = sum(f["rows"] or 0 for f in snap.files)
    pairs = snap.manifest["counts"]["pairs"]
    import shutil

    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    return {"pairs": pairs, "rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed,
            "pairs_per_s": pairs / elapsed, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": rss0,
            "sha256": {f["name"]: f["sha256"] for f in snap.files if f["rows"] is not None},
            "cpu_s": cpu1[0] - cpu0[0], "db_cpu_s": None if cpu1[1] is None else cpu1[1] - cpu0[1]}


def phase_naive(url: str, batch_id: int, max_seconds: float, max_rows: int) -> dict:
    """What one writes without thinking about it: the ORM with related objects, votes grouped
    in a dict, then a majority and json.dumps per pair."""
    _setup_django(url)
    from annotation.models import Judgment

    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    by_pair: dict[int, list] = {}
    judgments = 0
    capped = False
    qs = Judgment.objects.filter(batch_id=batch_id, is_current=True).select_related(
        "pair__prompt", "pair__completion_a", "pair__completion_b").order_by("pair_id")
    for j in qs.iterator(chunk_size=2000):
        by_pair.setdefault(j.pair_id, []).append(j)
        judgments += 1
        if judgments % 3000 == 0 and (time.perf_counter() - t0 > max_seconds or judgments >= max_rows * RATERS):
            capped = True
            break
    rows = 0
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as out:
        for pair_id, js in by_pair.items():
            pair = js[0].pair
            a = sum(1 for j in js if j.preference < 0)
            b = sum(1 for j in js if j.preference > 0)
            if a == b or any(j.a_unsafe or j.b_unsafe for j in js):
                continue
            chosen, rejected = (pair.completion_a, pair.completion_b) if a > b else (pair.completion_b, pair.completion_a)
            out.write(json.dumps({"prompt": pair.prompt.text, "chosen": chosen.text, "rejected": rejected.text,
                                  "pair_id": pair_id, "n_votes": len(js)}, sort_keys=True) + "\n")
            rows += 1
    elapsed = time.perf_counter() - t0
    return {"pairs": len(by_pair), "rows": rows, "seconds": elapsed, "pairs_per_s": len(by_pair) / elapsed,
            "rows_per_s": rows / elapsed, "peak_rss_mb": _peak_rss_mb(), "rss_before_mb": rss0, "capped": capped}


def _cpu_text(side: dict) -> str:
    db = "" if side["db_cpu_s"] is None else f" + PostgreSQL backend {side['db_cpu_s']:.1f}s"
    return f"CPU: export process {side['cpu_s']:.1f}s{db}"


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="judged pairs (3 judgments each)")
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    parser.add_argument("--naive-rows", type=int, default=200_000, help="cap on pairs the naive loop reads")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the run of the general (reference) export path")
    parser.add_argument("--phase", choices=["stream", "reference", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.phase in ("stream", "reference"):
        print(json.dumps(phase_stream(url, args.batch, reference=args.phase == "reference")))
        return
    if args.phase == "naive":
        print(json.dumps(phase_naive(url, args.batch, args.naive_seconds, args.naive_rows)))
        return
    if not 1 <= args.n <= MAX_N:
        raise SystemExit(f"--n must be in [1, {MAX_N:,}]")
    batch_id = phase_load(url, args.n)
    load_before = os.getloadavg()
    stream = _child(["--phase", "stream", "--batch", str(batch_id)])
    reference = None if args.no_reference else _child(["--phase", "reference", "--batch", str(batch_id)])
    naive = _child(["--phase", "naive", "--batch", str(batch_id), "--naive-seconds", str(args.naive_seconds),
                    "--naive-rows", str(args.naive_rows)])
    load_after = os.getloadavg()
    print(f"PostgreSQL, {args.n:,} judged pairs x {RATERS} judgments, {os.cpu_count()} CPUs; load average "
          f"(1/5/15 min) {'/'.join(f'{x:.2f}' for x in load_before)} before, {'/'.join(f'{x:.2f}' for x in load_after)} after")
    print(f"export_create (streaming, trl-jsonl train+test, sha256, storage save; agreement report off): {stream['rows']:,} rows from "
          f"{stream['pairs']:,} pairs in {stream['seconds']:.1f}s = {stream['rows_per_s']:,.0f} rows/s "
          f"({stream['pairs_per_s']:,.0f} pairs/s); peak RSS {stream['peak_rss_mb']:.0f} MB "
          f"(process baseline {stream['rss_before_mb']:.0f} MB); {_cpu_text(stream)}")
    if reference is not None:
        same = reference["sha256"] == stream["sha256"]
        print(f"reference path (export_write over PairVotes, same export): {reference['rows']:,} rows in "
              f"{reference['seconds']:.1f}s = {reference['rows_per_s']:,.0f} rows/s; peak RSS {reference['peak_rss_mb']:.0f} MB; "
              f"{_cpu_text(reference)}; fast/reference {stream['rows_per_s'] / max(reference['rows_per_s'], 1e-9):.2f}x; "
              f"files {'byte-identical (same SHA-256)' if same else 'DIFFER'}")
    frac = naive["pairs"] / args.n
    naive_rss_full = naive["rss_before_mb"] + (naive["peak_rss_mb"] - naive["rss_before_mb"]) / max(frac, 1e-9)
    label = f"stopped after {naive['pairs']:,} pairs ({frac:.1%} of N); " if naive["capped"] else ""
    print(f"naive ORM loop: {label}{naive['rows']:,} rows in {naive['seconds']:.1f}s = {naive['rows_per_s']:,.0f} rows/s; "
          f"peak RSS {naive['peak_rss_mb']:.0f} MB"
          + (f", extrapolated to N: ~{naive_rss_full:,.0f} MB and ~{args.n / naive['pairs_per_s']:,.0f}s (linear estimate)"
             if naive["capped"] else ""))
    print(f"ratio (rows/s, streaming / naive): {stream['rows_per_s'] / max(naive['rows_per_s'], 1e-9):.1f}x")
    ok_speed, ok_mem = stream["rows_per_s"] >= 100_000, stream["peak_rss_mb"] < 300
    print(f"targets: >= 100,000 rows/s: {'met' if ok_speed else 'NOT met'}; < 300 MB RSS: {'met' if ok_mem else 'NOT met'}")


if __name__ == "__main__":
    main()
