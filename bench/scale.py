"""Every page and API answer at scale: seeds PostgreSQL with COPY (20 batches over 4 specialties,
--pairs pairs in all, one batch holding half of them; 3 judgments per pair by 200 raters; 10,000
live leases; 50 exports; 50 training runs), then GETs every page and endpoint as an admin and as
a physician, 20 times each, in-process (Django's test Client), and prints p50/p95 per URL, SQL
queries per request and any plan that reads a whole table of pairs, judgments or assignments.

Baseline: the same URLs on a database one tenth the size, from the same run; the ratio of p95s
shows whether a URL grows with the data (flat = about 1).

    .venv/bin/python bench/scale.py                      # 1,000,000 pairs, 3,000,000 judgments
    .venv/bin/python bench/scale.py --pairs 100000       # a quicker run
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
from _setup import bench_database  # noqa: E402

import scale_probe  # noqa: E402

TARGET_MS = 300


def batch_sizes(total: int, n: int = 20) -> list[int]:
    """One batch holding half the pairs, the rest spread evenly over the other n-1."""
    big = total // 2
    rest = total - big
    return [big] + [rest // (n - 1) + (1 if i < rest % (n - 1) else 0) for i in range(n - 1)]


def run(database: str, total: int, repeats: int, log) -> tuple[dict, dict]:
    bench_database(database)
    from django.test import Client

    t0 = time.perf_counter()
    seeded = scale_probe.seed(batch_sizes=batch_sizes(total), log=log)
    log(f"seeded {total:,} pairs, {3 * (total - 0):,} judgments at most, in {time.perf_counter() - t0:.0f} s")
    # The big batch's agreement report cold, as the background task computes it.
    from annotation.agreement.services import agreement_report_for_batch
    from annotation.models import Batch

    big = Batch.objects.get(pk=seeded.big_batch)
    t0 = time.perf_counter()
    agreement_report_for_batch(batch=big)
    cold = {"agreement report of the big batch, cold (runs as a task)": time.perf_counter() - t0}
    clients = {}
    for role, user in (("admin", seeded.admin), ("physician", seeded.physician)):
        clients[role] = Client()
        clients[role].force_login(user)
    # The big batch's export (what closing a batch runs as a task) and each of its files downloaded
    # whole through the API, as an ML engineer fetches them.
    from annotation.exports.services import export_create, export_default_params

    t0 = time.perf_counter()
    snapshot = export_create(batch=big, params=export_default_params(), created_by=seeded.admin)
    cold["export of the big batch, every file (runs as a task)"] = time.perf_counter() - t0
    for entry in snapshot.files:
        t0 = time.perf_counter()
        response = clients["admin"].get(f"/api/exports/{snapshot.pk}/files/{entry['name']}")
        size = sum(len(chunk) for chunk in response.streaming_content)
        cold[f"download {entry['name']} of the big batch's export ({size / 1e6:.1f} MB, status {response.status_code})"] = time.perf_counter() - t0
    results = {}
    for label, url, roles in scale_probe.get_urls(seeded):
        for role in roles:
            t0 = time.perf_counter()
            status, _, _ = scale_probe.probe(clients[role], url)  # warm: caches are filled once per change
            cold[f"{label} ({role}) first view"] = time.perf_counter() - t0
            times, n_queries, scans = [], 0, []
            for i in range(repeats):
                status, ms, queries = scale_probe.probe(clients[role], url)
                times.append(ms)
                n_queries = len(queries)
                if i == 0:
                    scans = scale_probe.seq_scanned_tables(queries, forbid_seqscan=False)
            times.sort()
            results[(label, role)] = {
                "url": url, "status": status, "p50": statistics.median(times),
                "p95": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))], "queries": n_queries,
                "seq_scans": sorted({t for t, _ in scans}),
            }
    # Last, since they change the data the URLs above read: an admin opens a draft batch and closes
    # the big one (forced: not every pair is judged); both must answer at once, the gate and export
    # of the close being queued.
    from annotation.models import BatchState

    draft = Batch.objects.filter(state=BatchState.DRAFT).order_by("id").first()
    for label, url in ((f"open a draft batch of {draft.pairs_count:,} pairs", f"/api/batches/{draft.pk}/open/"),
                       (f"close the big batch of {big.pairs_count:,} pairs", f"/api/batches/{big.pk}/close/")):
        t0 = time.perf_counter()
        response = clients["admin"].post(url, {"force": True}, content_type="application/json")
        cold[f"{label} (status {response.status_code})"] = time.perf_counter() - t0
    return results, cold


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--database", default="clinpref_scale")
    opts = parser.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    log(f"baseline: {opts.pairs // 10:,} pairs")
    base, _ = run(opts.database, opts.pairs // 10, opts.repeats, log)
    from django.db import connections

    connections.close_all()
    log(f"full: {opts.pairs:,} pairs")
    full, cold = run(opts.database, opts.pairs, opts.repeats, log)

    print(f"\n{opts.pairs:,} pairs ({opts.pairs // 2:,} in one batch), {opts.repeats} requests per URL and role; "
          f"baseline = the same run at {opts.pairs // 10:,} pairs")
    print(f"| URL | role | status | p50 ms | p95 ms | p95 vs 1/10 size | queries (1/10 size) | whole-table scans |")
    print("|---|---|---|---|---|---|---|---|")
    over = []
    for key, r in full.items():
        b = base.get(key, {})
        ratio = r["p95"] / b["p95"] if b.get("p95") else float("nan")
        if r["p95"] > TARGET_MS:
            over.append(key)
        print(f"| `{r['url']}` | {key[1]} | {r['status']} | {r['p50']:.1f} | {r['p95']:.1f} | {ratio:.2f}x | "
              f"{r['queries']} ({b.get('queries', '-')}) | {', '.join(r['seq_scans']) or '-'} |")
    print("\nThe big batch's agreement report and export (tasks in the product), its export's downloads, and the slowest "
          "first views (they fill caches):")
    tasks = {k: v for k, v in cold.items() if "first view" not in k}
    views = sorted(((k, v) for k, v in cold.items() if "first view" in k), key=lambda kv: -kv[1])[:6]
    for label, seconds in [*tasks.items(), *views]:
        print(f"  {label}: {seconds:.2f} s")
    print(f"\n{len(full) - len(over)} of {len(full)} URL x role within p95 < {TARGET_MS} ms"
          + (f"; over: {', '.join(f'{k[0]} ({k[1]})' for k in over)}" if over else ""))


if __name__ == "__main__":
    main()
