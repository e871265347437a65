"""The judging hot path under load: gunicorn + PostgreSQL, simulated physicians looping
GET /api/next/ -> POST judgment with no think time.

Prints judgments/s and p50/p95/p99 of both calls at each concurrency, then checks the
database: no pair over-assigned, no judgment duplicated, every 2xx judgment stored once.
The baseline ratio compares against the target (100 judgments/s, p99 < 200 ms at 50 raters).

    .venv/bin/python bench/hot_path.py [--concurrency 10,50,100] [--seconds 15]
"""

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Process, Queue

from _setup import ROOT, bench_database

PORT = 8765


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def seed(n_raters: int, n_pairs: int):
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from annotation.labeling.importing import pairs_import
    from annotation.models import Profile, Role
    from annotation.labeling.services import batch_create, batch_open, specialty_get_or_create

    User = get_user_model()
    specialty, _ = specialty_get_or_create(name="Cardiology")
    admin = User.objects.create_user("bench_admin")  # API tokens only: no password to hash
    Profile.objects.create(user=admin, role=Role.ADMIN, specialty=specialty)
    batch = batch_create(name="bench", specialty_name="Cardiology", created_by=admin, calibration_rate=0.0)
    lines = (json.dumps({"prompt": f"Patient {i}: chest pain for {i % 48} hours?", "response_a": f"Urgent ECG and troponin ({i}).",
                         "response_b": f"Rest and fluids ({i})."}) for i in range(n_pairs))
    pairs_import(batch=batch, lines=lines, actor=admin)
    batch_open(batch_id=batch.pk, actor=admin)
    tokens = []
    for i in range(n_raters):
        user = User.objects.create_user(f"bench_dr_{i}")
        Profile.objects.create(user=user, role=Role.PHYSICIAN, specialty=specialty)
        tokens.append(Token.objects.create(user=user).key)
    return tokens


# After a 5xx or a dropped connection a rater waits this long before trying again, as the page
# does, instead of spinning on a server that is restarting.
RETRY_PAUSE_S = 0.2


def rater_loop(token: str, deadline: float, max_judgments: int, out: list, port: int = PORT):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    done = 0
    while time.monotonic() < deadline and done < max_judgments:
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/api/next/", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            out.append(("next", time.perf_counter() - t0, 599, None))
            time.sleep(RETRY_PAUSE_S)
            continue
        out.append(("next", time.perf_counter() - t0, resp.status, None))
        if resp.status == 204:
            return
        if resp.status != 200:
            time.sleep(RETRY_PAUSE_S if resp.status >= 500 else 0)
            continue
        assignment_id = json.loads(body)["assignment_id"]
        payload = json.dumps({"preference": "1>2", "idempotency_key": secrets.token_hex(8), "time_spent_ms": 1000,
                              "criteria": {"accuracy": "1>2"}})
        t0 = time.perf_counter()
        try:
            conn.request("POST", f"/api/assignments/{assignment_id}/judgment/", body=payload, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            out.append(("judgment", time.perf_counter() - t0, 599, None))
            time.sleep(RETRY_PAUSE_S)
            continue
        judgment_id = json.loads(body).get("id") if resp.status in (200, 201) else None
        out.append(("judgment", time.perf_counter() - t0, resp.status, judgment_id))
        if resp.status >= 500:
            time.sleep(RETRY_PAUSE_S)
        done += 1


def client_process(tokens, seconds, max_judgments, queue: Queue, port: int = PORT):
    deadline = time.monotonic() + seconds
    results: list = []
    threads = [threading.Thread(target=rater_loop, args=(t, deadline, max_judgments, results, port)) for t in tokens]
    [t.start() for t in threads]
    [t.join() for t in threads]
    queue.put(results)


def run_level(tokens, seconds, max_judgments, client_procs=2, port: int = PORT):
    queue: Queue = Queue()
    chunks = [tokens[i::client_procs] for i in range(client_procs)]
    procs = [Process(target=client_process, args=(c, seconds, max_judgments, queue, port)) for c in chunks if c]
    t0 = time.perf_counter()
    [p.start() for p in procs]
    results = []
    for _ in procs:
        results.extend(queue.get())
    [p.join() for p in procs]
    return results, time.perf_counter() - t0


def server_env(db_url: str, **extra) -> dict:
    """The production profile as the benches run it. Production refuses to start without a broker;
    the hot path never queues a task, so unless told otherwise it names the shared Redis."""
    return {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(60), "SECURE_SSL_REDIRECT": "false", "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600",
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"), **extra}


def start_server(db_url: str, workers: int, threads: int, worker_class: str = "gthread", port: int = PORT, env: dict | None = None,
                 log_path=None):
    env = env or server_env(db_url)
    # A file, not a pipe nobody reads: a full pipe would block every worker on its next log line.
    errors = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors,
    )
    for _ in range(100):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    errors.seek(0)
    raise SystemExit("gunicorn did not start: " + errors.read().decode()[-2000:])


def check_database(judgment_ids_2xx: list[int]) -> dict:
    """Consistency of the "bench" batch after a load: no pair leased to more raters than it takes,
    no rater with two current judgments of one pair, every acknowledged judgment stored, and the
    pairs' judgment counters equal to their rows."""
    from django.db.models import Count

    from annotation.models import Assignment, Batch, Judgment, Pair

    batch = Batch.objects.get(name="bench")
    over = (
        Assignment.objects.exclude(status="expired").values("pair").annotate(n=Count("id"))
        .filter(n__gt=batch.raters_per_pair).count()
    )
    dup = Judgment.objects.filter(is_current=True).values("pair", "rater").annotate(n=Count("id")).filter(n__gt=1).count()
    stored = set(Judgment.objects.filter(id__in=judgment_ids_2xx).values_list("id", flat=True))
    counter_drift = sum(
        1 for p in Pair.objects.annotate(real=Count("judgments")).only("judgments_count") if p.real != p.judgments_count
    )
    return {"pairs_over_assigned": over, "duplicate_judgments": dup,
            "acknowledged_not_stored": len(set(judgment_ids_2xx) - stored), "counter_drift": counter_drift}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="10,50,100")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--max-judgments", type=int, default=10_000, help="per rater, a bound on the loop")
    parser.add_argument("--workers", type=int, default=3, help="2 x cores - 1 leaves a core share for the load generator")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker-class", default="sync", choices=["gthread", "sync"])
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    db_url = bench_database("clinpref_bench_hot_path")
    tokens = seed(max(levels), n_pairs=60_000)
    server = start_server(db_url, args.workers, args.threads, args.worker_class)
    print(f"gunicorn: {args.workers} {args.worker_class} workers x {args.threads} threads, PostgreSQL, {os.cpu_count()} cores\n")
    print(f"{'raters':>6} {'judg/s':>8} {'next p50/p95/p99 ms':>22} {'judg p50/p95/p99 ms':>22} {'errors':>7}")
    all_ok_ids: list[int] = []
    summary = {}
    try:
        for level in levels:
            results, wall = run_level(tokens[:level], args.seconds, args.max_judgments)
            nxt = [r[1] * 1000 for r in results if r[0] == "next" and r[2] in (200, 204)]
            jdg = [r[1] * 1000 for r in results if r[0] == "judgment" and r[2] in (200, 201)]
            errors = sum(1 for r in results if r[2] >= 400)
            all_ok_ids += [r[3] for r in results if r[0] == "judgment" and r[3]]
            rate = len(jdg) / wall
            summary[level] = (rate, percentile(nxt, 99), percentile(jdg, 99), errors)
            print(f"{level:>6} {rate:>8.1f} {percentile(nxt, 50):>7.1f}/{percentile(nxt, 95):>6.1f}/{percentile(nxt, 99):>6.1f}"
                  f" {percentile(jdg, 50):>7.1f}/{percentile(jdg, 95):>6.1f}/{percentile(jdg, 99):>6.1f} {errors:>7}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)
    checks = check_database(all_ok_ids)
    print("\ndatabase checks:", json.dumps(checks))
    if 50 in summary:
        rate, p99n, p99j, errors = summary[50]
        print(f"\nat 50 raters: {rate:.1f} judgments/s = {rate / 100:.2f}x the 100/s target; "
              f"p99 next {p99n:.0f} ms, judgment {p99j:.0f} ms (target < 200 ms)")
    ok = all(v == 0 for v in checks.values())
    print("checks:", "clean" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
