"""Import speed: 100,000 JSONL lines validated and imported atomically into PostgreSQL.
Baseline in the same run: the same rows saved one ORM .save() at a time (a sample, extrapolated).

--api: the same size through the API as an admin sends it. Times the 202 answer, then runs the
queued ImportJob in a worker thread while the main thread keeps requesting the dashboard and the
batch list, and prints their p50/p95 before, during and after the import (baseline: before).

    .venv/bin/python bench/import.py [--lines 100000]
    .venv/bin/python bench/import.py --api [--lines 100000]
"""

import argparse
import json
import statistics
import time

from _setup import bench_database


def make_lines(n: int) -> list[bytes]:
    return [json.dumps({
        "prompt": f"A 58-year-old with type 2 diabetes asks about case {i}: should metformin be stopped before a CT with contrast?",
        "response_a": f"Hold metformin at the time of contrast if eGFR is below 30, recheck renal function in 48 hours ({i}).",
        "response_b": f"Stop all diabetes medicines for a week before any scan ({i}).",
        "model_a": "clinical-llm-v2", "model_b": "clinical-llm-v1", "id": f"case-{i}",
    }).encode() for i in range(n)]


def _percentiles(times: list[float]) -> str:
    times = sorted(times)
    return f"p50 {statistics.median(times):.0f} ms, p95 {times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]:.0f} ms, n {len(times)}"


def api_import(lines_n: int) -> None:
    """A big import through the API: the answer, then the site while the job runs."""
    import os
    import threading

    # The job is queued on an in-memory broker nobody reads; this script runs it in a thread the way
    # a worker would, so that it can measure the site at the same time.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ.setdefault("DEBUG", "0")
    bench_database("clinpref_bench_import_api")
    from django.db import connection
    from django.test import Client

    from annotation.labeling.importing import import_job_run
    from annotation.labeling.services import batch_create, rater_create
    from annotation.models import Batch, ImportJob

    admin, _ = rater_create(username="import-admin", password="bench-password-1", specialty_name="Cardiology", role="admin")
    batch = batch_create(name="api-import-bench", specialty_name="Cardiology", created_by=admin)
    other = batch_create(name="a batch next to it", specialty_name="Cardiology", created_by=admin)
    # Short pairs (about 150 bytes a line), so 100,000 lines stay under DATA_UPLOAD_MAX_MEMORY_SIZE.
    body = "\n".join(json.dumps({"prompt": f"Chest pain {i}: what next?", "response_a": f"ECG within 10 minutes ({i}).",
                                  "response_b": f"Rest at home ({i})."}) for i in range(lines_n))
    client = Client()
    client.force_login(admin)
    urls = ["/dashboard/", f"/dashboard/batches/{other.pk}/", "/api/batches/", f"/dashboard/batches/{batch.pk}/"]

    def sample(seconds: float | None = None, until=None) -> list[float]:
        times, t_end = [], time.perf_counter() + (seconds or 0)
        while (until is not None and until.is_alive()) or (until is None and time.perf_counter() < t_end):
            for url in urls:
                t0 = time.perf_counter()
                status = client.get(url).status_code
                times.append((time.perf_counter() - t0) * 1000)
                assert status == 200, (url, status)
        return times

    before = sample(seconds=5)
    t0 = time.perf_counter()
    response = client.post(f"/api/batches/{batch.pk}/pairs/", data=body, content_type="application/x-ndjson")
    answered = time.perf_counter() - t0
    assert response.status_code == 202, response.content[:500]
    job_id = response.json()["id"]
    print(f"POST /api/batches/{batch.pk}/pairs/ with {lines_n:,} lines ({len(body) / 1e6:.1f} MB): {response.status_code} in {answered:.2f} s, "
          f"Location {response['Location']}")

    def worker():
        import_job_run(job_id=job_id)
        connection.close()

    t0 = time.perf_counter()
    thread = threading.Thread(target=worker)
    thread.start()
    during = sample(until=thread)
    thread.join()
    ran = time.perf_counter() - t0
    after = sample(seconds=5)
    job = ImportJob.objects.get(pk=job_id)
    print(f"import job {job.pk}: {job.status}, {job.pairs_created:,} pairs in {ran:.1f} s; batch pairs_count "
          f"{Batch.objects.get(pk=batch.pk).pairs_count:,}")
    print(f"dashboard and batch list ({', '.join(urls)}), each request:")
    print(f"  before the import: {_percentiles(before)}   (baseline)")
    print(f"  while it runs:     {_percentiles(during)}")
    print(f"  after it:          {_percentiles(after)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    parser.add_argument("--api", action="store_true", help="through the API (202 and a background job), with the site measured meanwhile")
    args = parser.parse_args()
    if args.api:
        return api_import(args.lines)
    bench_database("clinpref_bench_import")
    from annotation.labeling.importing import pair_fingerprint, pairs_import, sha256
    from annotation.models import Completion, Pair, Prompt
    from annotation.labeling.services import batch_create, specialty_get_or_create

    specialty_get_or_create(name="Cardiology")
    batch = batch_create(name="import-bench", specialty_name="Cardiology", created_by=None)
    lines = make_lines(args.lines)

    t0 = time.perf_counter()
    created = pairs_import(batch=batch, lines=lines, actor=None)
    ours = time.perf_counter() - t0
    assert created == args.lines == Pair.objects.filter(batch=batch).count()

    # Baseline: the obvious ORM loop, a row at a time (validation excluded, so it is generous).
    base_batch = batch_create(name="import-baseline", specialty_name="Cardiology", created_by=None)
    sample = [json.loads(raw) for raw in make_lines(args.baseline_sample)]
    t0 = time.perf_counter()
    for row in sample:
        prompt = Prompt.objects.create(text=row["prompt"], text_sha256=sha256(row["prompt"]))
        a = Completion.objects.create(prompt=prompt, text=row["response_a"], model_name=row["model_a"])
        b = Completion.objects.create(prompt=prompt, text=row["response_b"], model_name=row["model_b"])
        Pair.objects.create(batch=base_batch, prompt=prompt, completion_a=a, completion_b=b,
                            fingerprint=pair_fingerprint(row["prompt"], a.text, b.text))
    baseline = (time.perf_counter() - t0) * args.lines / args.baseline_sample

    print(f"lines imported: {created:,} (validated, one transaction, PostgreSQL COPY)")
    print(f"clinpref import: {ours:.2f} s  ({created / ours:,.0f} lines/s; target < 5 s)")
    print(f"ORM row-by-row baseline: {baseline:.1f} s (extrapolated from {args.baseline_sample:,} lines)")
    print(f"ratio: {baseline / ours:.1f}x faster")


if __name__ == "__main__":
    main()
