"""Judging under load while things break: gunicorn + PostgreSQL + Redis + a Celery worker, all
started by this script for itself (its own PostgreSQL cluster and Redis on other ports), simulated
physicians looping GET /api/next/ -> POST judgment (bench/hot_path.py's load generator).

For each level of physicians the load runs twice for the same time: once clean (the baseline) and
once with faults: every gunicorn worker killed with SIGKILL, then PostgreSQL restarted. Then, under
a load of the smallest level, the pipeline faults: Redis stopped while an admin closes a batch
(labeling goes on; the close answers at once and says training starts when the broker is back;
it starts once Redis is back, once), the Celery worker killed with SIGKILL in the middle of that
close's gate and export, and again in the middle of the training run it starts.

Afterwards: every acknowledged judgment is in the database exactly once, no pair is over its
raters per pair, counters match rows; the close started exactly one pipeline and one published
export whose files are complete; no run is left running. Prints judgments/s, p50/p99, errors by
kind, the recovery time after each fault and the ratio against the clean run.

    .venv/bin/python bench/faults.py [--levels 50,100,200] [--seconds 20]
    .venv/bin/python bench/faults.py --smoke     # 10 physicians, short, no training (the test suite runs this)
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from _setup import ROOT, bench_database
from hot_path import check_database, percentile, run_level, seed, server_env, start_server

PG_PORT = 55432
REDIS_PORT = 56379
WEB_PORT = 8766
LABELING_BATCH = "bench"  # hot_path.seed's batch, checked by hot_path.check_database
CLOSE_BATCH = "bench-close"
# A reward model that trains for a few seconds on CPU: long enough to be killed mid-run.
TRAINING_PARAMS = {"reward_model": {"max_steps": 40, "per_device_train_batch_size": 4, "max_length": 64, "learning_rate": 5e-4}}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------------ our own services


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class OwnPostgres:
    """A throw-away cluster in a temp dir on its own port, never the shared one."""

    def __init__(self, work: Path, port: int):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
        self.bin, self.port, self.data = Path(bins[-1]), port, work / "pg"
        self.data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(work, "postgres")
            shutil.chown(self.data, "postgres")
            os.chmod(self.data, 0o700)
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.url = f"postgres://postgres@127.0.0.1:{port}"

    def _ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=on"
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.data / "log"),
                                     "-w", "-t", "60", *args]), check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")


class OwnRedis:
    """redis-server on its own port, without persistence: a restart loses every queued message,
    the worst case for the broker."""

    def __init__(self, work: Path, port: int):
        self.port, self.dir, self.proc = port, work, None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                import redis

                redis.Redis.from_url(self.url, socket_connect_timeout=0.2).ping()
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


class Worker:
    """A Celery worker (both queues, with beat) in its own process group, so SIGKILL takes the
    main process and its pool together, as a lost host would."""

    def __init__(self, env: dict, work: Path, queues: str = "default,gpu"):
        self.env, self.work, self.queues, self.proc = env, work, queues, None
        self.log_path = work / "worker.log"

    def start(self) -> None:
        celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
        self.proc = subprocess.Popen(
            [celery, "-A", "config", "worker", "-B", "-s", str(self.work / "beat-schedule"), "-Q", self.queues,
             "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT, env=self.env, stdout=open(self.log_path, "a"), stderr=subprocess.STDOUT, start_new_session=True)

    def kill9(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ data


def seed_close_batch(n_pairs: int, pipeline: str) -> int:
    """A batch ready to close: every pair judged by three physicians (bulk rows, like an import of
    finished work), closed later with an override reason so the gate never stops the pipeline."""
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.utils import timezone

    from annotation.labeling.importing import pairs_import
    from annotation.labeling.services import batch_counters_recount, batch_create, batch_open, specialty_get_or_create
    from annotation.models import Assignment, Batch, Judgment, Pair, Profile, Role

    User = get_user_model()
    admin = User.objects.get(username="bench_admin")
    # Another specialty: a second open batch of the load's specialty would change the lease query the load measures.
    specialty_get_or_create(name="Neurology")
    batch = batch_create(name=CLOSE_BATCH, specialty_name="Neurology", created_by=admin, calibration_rate=0.0)
    lines = (json.dumps({"prompt": f"Close {i}: palpitations for {i % 30} days?", "response_a": f"Holter monitor and ECG ({i}).",
                         "response_b": f"Ignore it ({i})."}) for i in range(n_pairs))
    pairs_import(batch=batch, lines=lines, actor=admin)
    batch_open(batch_id=batch.pk, actor=admin)
    Batch.objects.filter(pk=batch.pk).update(training_pipeline=pipeline)
    raters = []
    for i in range(3):
        user = User.objects.create_user(f"bench_closer_{i}")
        Profile.objects.create(user=user, role=Role.PHYSICIAN, specialty=batch.specialty)
        raters.append(user)
    now = timezone.now()
    pairs = list(Pair.objects.filter(batch=batch).values_list("pk", flat=True))
    assignments = Assignment.objects.bulk_create([
        Assignment(pair_id=p, rater=r, batch=batch, a_shown_first=True, status="submitted", leased_at=now, expires_at=now,
                   finished_at=now) for p in pairs for r in raters])
    Judgment.objects.bulk_create([
        Judgment(assignment=a, pair_id=a.pair_id, batch=batch, rater=a.rater, preference=-1 if (a.pair_id + a.rater_id) % 5 else 1,
                 a_shown_first=True, idempotency_key=f"seed-{a.pk}", time_spent_ms=20_000) for a in assignments])
    Pair.objects.filter(batch=batch).update(judgments_count=3, open_slots=0)
    Batch.objects.filter(pk=batch.pk).update(data_version=F("data_version") + 1)
    # Bulk rows bypass the services that keep the batch's counters: rebuild them from the rows.
    batch_counters_recount(batch_ids=[batch.pk], rater_ids=[r.pk for r in raters])
    return batch.pk


# ------------------------------------------------------------------------------ measuring


class Probe(threading.Thread):
    """One client asking GET /api/me/ (token auth: a database read) every 50 ms, so the time from
    a fault until requests succeed again is measured the same way for every fault."""

    def __init__(self, token: str):
        super().__init__(daemon=True)
        self.token, self.samples, self.stopped = token, [], threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            t = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=30)
                conn.request("GET", "/api/me/", headers={"Authorization": f"Token {self.token}"})
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = 599
            self.samples.append((t, time.monotonic(), status))
            time.sleep(0.05)

    def recovered_after(self, since: float) -> float | None:
        """Seconds from `since` until a request started after the fault's last failure (or after
        `since`, when nothing failed) came back successful: a killed web worker's replacement must
        boot before it answers, a restarted database must accept connections again."""
        after = [(start, end, status) for start, end, status in self.samples if start >= since]
        last_failure = max((start for start, _, status in after if status != 200), default=since)
        ok = [end for start, end, status in after if status == 200 and start >= last_failure]
        return (ok[0] - since) if ok else None


def summarise(results: list, wall: float) -> dict:
    nxt = [r[1] * 1000 for r in results if r[0] == "next" and r[2] in (200, 204)]
    jdg = [r[1] * 1000 for r in results if r[0] == "judgment" and r[2] in (200, 201)]
    errors = Counter(str(r[2]) for r in results if r[2] >= 400)
    return {"rate": len(jdg) / wall, "next_p50": percentile(nxt, 50), "next_p99": percentile(nxt, 99),
            "judg_p50": percentile(jdg, 50), "judg_p99": percentile(jdg, 99), "errors": dict(errors),
            "ok_ids": [r[3] for r in results if r[0] == "judgment" and r[3]]}


def web_workers(master: subprocess.Popen) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


def _tail(path: Path, chars: int = 5000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(none)"


def wait_for(predicate, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def api(method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict, float]:
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", WEB_PORT, timeout=60)
    conn.request(method, path, body=json.dumps(body or {}), headers={"Authorization": f"Token {token}",
                                                                      "Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {"detail": raw[:300].decode(errors="replace")}
    return resp.status, body, time.monotonic() - t0


# ------------------------------------------------------------------------------ the faults


def web_and_database_faults(*, server, pg: OwnPostgres, probe: Probe, seconds: float, recoveries: dict, level: int) -> None:
    """During one load run: SIGKILL every gunicorn worker at 25%, restart PostgreSQL at 55%."""
    time.sleep(seconds * 0.25)
    t = time.monotonic()
    for pid in web_workers(server):
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: probe.recovered_after(t) is not None, 30)
    recoveries[f"{level}: kill -9 all web workers"] = probe.recovered_after(t)
    time.sleep(max(0.0, seconds * 0.55 - (time.monotonic() - t) - seconds * 0.25))
    t = time.monotonic()
    pg.restart()
    restarted = time.monotonic()
    wait_for(lambda: any(status == 200 for start, _, status in probe.samples if start > restarted), 30)
    recoveries[f"{level}: restart PostgreSQL"] = probe.recovered_after(t)


def pipeline_faults(*, redis: OwnRedis, worker: Worker, admin_token: str, probe: Probe, training: bool, report: dict) -> None:
    """Redis down during a close; SIGKILL of the worker during the close's gate+export, and during
    the training run it starts. Fills `report` with what happened and how long recovery took."""
    from django.db import OperationalError, connection, transaction

    from annotation.models import Batch, BatchEvent
    from training.models import TrainingRun

    batch_id = Batch.objects.get(name=CLOSE_BATCH).pk

    # 1. Redis stops; labeling goes on; the close answers and says training waits for the broker.
    redis.stop()
    t_down = time.monotonic()
    time.sleep(1.0)
    status, body, took = api("POST", f"/api/batches/{batch_id}/close/", admin_token, {"override_reason": "bench: faults"})
    outcome = (body.get("close_outcome") or {}).get("state")
    report["close while Redis is down"] = f"HTTP {status} in {took:.2f}s, outcome {outcome!r}" + (
        "" if status == 200 else f" ({str(body.get('detail'))[:200]!r}; gunicorn log: {_tail(worker.work / 'gunicorn.log')})")
    report["_close_ok"] = status == 200 and outcome == "waiting_for_broker"
    time.sleep(2.0)
    judged_during = [status for start, _, status in probe.samples if start > t_down]
    report["probe answers while Redis is down"] = dict(Counter(map(str, judged_during)))
    redis.start()
    t_up = time.monotonic()

    # 2. Beat re-sends the event once the broker is back; the worker picks it up. Kill it while the
    # dispatch (gate, export) holds the outbox row, detected by a NOWAIT lock attempt.
    def dispatch_in_progress() -> bool | str:
        """True while a worker holds the outbox row (inside the gate/export), "handled" once done."""
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT handled_at FROM annotation_batchevent WHERE batch_id = %s FOR UPDATE NOWAIT", [batch_id])
                    row = cursor.fetchone()
        except OperationalError:
            return True
        return "handled" if row and row[0] is not None else False

    state = wait_for(dispatch_in_progress, 60, every=0.02)
    report["time until the close was handed over after Redis came back"] = f"{time.monotonic() - t_up:.1f}s"
    if state is True:
        worker.kill9()
        event = BatchEvent.objects.get(batch_id=batch_id)
        exports_at_kill = Batch.objects.get(pk=batch_id).exports.count()
        report["kill -9 worker during the close's gate/export"] = (
            f"killed mid-dispatch; event handled: {event.handled_at is not None}, exports published: {exports_at_kill}")
        t_kill = time.monotonic()
        worker.start()
        handled = wait_for(lambda: BatchEvent.objects.filter(batch_id=batch_id, handled_at__isnull=False).exists(), 90, every=0.2)
        report["recovery: close handled after the worker was killed"] = (
            f"{time.monotonic() - t_kill:.1f}s" if handled else "NOT handled within 90s")
    else:
        report["kill -9 worker during the close's gate/export"] = "the dispatch finished before the kill could land (not killed)"
        wait_for(lambda: BatchEvent.objects.filter(batch_id=batch_id, handled_at__isnull=False).exists(), 90, every=0.2)

    # 3. Kill the worker in the middle of the training run the close started.
    if training:
        run = wait_for(lambda: TrainingRun.objects.filter(pipeline__trigger_key=f"batch_closed:{batch_id}", status="running",
                                                          current_step__gt=0).first(), 240, every=0.2)
        if run is None:
            report["kill -9 worker during training"] = "the run never reached a training step (not killed)"
        else:
            worker.kill9()
            t_kill = time.monotonic()
            report["kill -9 worker during training"] = f"killed at step {run.current_step}"
            worker.start()
            ended = wait_for(lambda: TrainingRun.objects.filter(pk=run.pk).exclude(status="running").exclude(
                status="queued").values_list("status", flat=True).first(), 120, every=0.5)
            report["recovery: run after the worker was killed"] = (
                f"{ended} after {time.monotonic() - t_kill:.1f}s" if ended else "STILL running/queued after 120s")


def pipeline_checks(batch_name: str) -> dict:
    """Exactly one pipeline and one event per close; every published export complete (each file in
    storage with the size and SHA-256 its row records); no run left running."""
    from django.core.files.storage import default_storage

    from annotation.models import Batch, BatchEvent, ExportSnapshot
    from training.models import TrainingPipeline, TrainingRun

    batch = Batch.objects.get(name=batch_name)
    broken = 0
    for export in ExportSnapshot.objects.filter(batch=batch):
        for f in export.files:
            with default_storage.open(f["path"], "rb") as fh:
                data = fh.read()
            broken += hashlib.sha256(data).hexdigest() != f["sha256"] or len(data) != f["bytes"]
    return {
        "close_events": BatchEvent.objects.filter(batch=batch).count(),
        "close_events_unhandled": BatchEvent.objects.filter(batch=batch, handled_at__isnull=True).count(),
        "pipelines": TrainingPipeline.objects.filter(trigger_key=f"batch_closed:{batch.pk}").count(),
        "exports_published": ExportSnapshot.objects.filter(batch=batch).count(),
        "export_files_incomplete": broken,
        "runs_left_running": TrainingRun.objects.filter(status="running").count(),
    }


# ------------------------------------------------------------------------------ main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="50,100,200")
    parser.add_argument("--seconds", type=float, default=20, help="per run; each level runs twice (clean, faulted)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--close-pairs", type=int, default=3000, help="pairs of the batch closed during the pipeline faults")
    parser.add_argument("--no-training", action="store_true", help="skip the kill during a training run")
    parser.add_argument("--smoke", action="store_true", help="10 physicians, 6 s runs, a small close, no training")
    args = parser.parse_args(argv)
    if args.smoke:
        args.levels, args.seconds, args.close_pairs, args.no_training = "10", 4, 500, True
    levels = [int(x) for x in args.levels.split(",")]

    started = time.monotonic()
    # SIGTERM tears down like Ctrl-C: the finally below stops every server this script started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="clinpref-faults-"))
    pg, redis = OwnPostgres(work, PG_PORT), OwnRedis(work, REDIS_PORT)
    server = worker = None
    try:
        pg.start()
        redis.start()
        media = work / "media"
        media.mkdir()
        os.environ.update(MEDIA_ROOT=str(media), REDIS_URL=redis.url, CELERY_BROKER_URL=redis.url, CELERY_RESULT_BACKEND=redis.url)
        db_url = bench_database("clinpref_faults", base_url=pg.url)
        log(f"own PostgreSQL on :{PG_PORT}, own Redis on :{REDIS_PORT}, work dir {work}")
        tokens = seed(max(levels) + 1, n_pairs=max(levels) * (100 if args.smoke else 400))
        probe_token, tokens = tokens[-1], tokens[:-1]
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        admin_token = Token.objects.create(user=get_user_model().objects.get(username="bench_admin")).key
        seed_close_batch(args.close_pairs, pipeline="reward_model")
        from django.db import connections

        connections.close_all()  # the PostgreSQL restarts would break these

        env = server_env(db_url, REDIS_URL=redis.url, CELERY_BROKER_URL=redis.url, CELERY_RESULT_BACKEND=redis.url,
                         MEDIA_ROOT=str(media), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TRL_EXPERIMENTAL_SILENCE="1",
                         TOKENIZERS_PARALLELISM="false", CLINPREF_TRAINING_AUTO_PARAMS=json.dumps(TRAINING_PARAMS),
                         CLINPREF_TRAINING_HEARTBEAT_SECONDS="2", CLINPREF_TRAINING_STALE_SECONDS="20",
                         CLINPREF_TRAINING_REAP_EVERY="2", CLINPREF_EVENT_RESEND_EVERY="2", CLINPREF_EVENT_RESEND_AFTER="5",
                         AGREEMENT_BOOTSTRAP_RESAMPLES="200")
        server = start_server(db_url, args.workers, 1, "sync", port=WEB_PORT, env={**env, "LOG_LEVEL": "ERROR"},
                              log_path=work / "gunicorn.log")
        # Without the training fault the gpu queue is left unserved: the run the close queues stays queued.
        worker = Worker(env, work, queues="default" if args.no_training else "default,gpu")
        worker.start()
        probe = Probe(probe_token)
        probe.start()

        rows, recoveries, ok_ids = [], {}, []
        for level in levels:
            clean_results, clean_wall = run_level(tokens[:level], args.seconds, 10_000, port=WEB_PORT)
            clean = summarise(clean_results, clean_wall)
            faults = threading.Thread(target=web_and_database_faults, kwargs=dict(
                server=server, pg=pg, probe=probe, seconds=args.seconds, recoveries=recoveries, level=level))
            faults.start()
            faulted_results, faulted_wall = run_level(tokens[:level], args.seconds, 10_000, port=WEB_PORT)
            faults.join()
            faulted = summarise(faulted_results, faulted_wall)
            ok_ids += clean["ok_ids"] + faulted["ok_ids"]
            rows.append((level, clean, faulted))
            log(f"{level} physicians: {clean['rate']:.1f} judgments/s clean, {faulted['rate']:.1f} with faults")

        pipeline_report: dict = {}
        done = threading.Event()
        pipeline_load: list = []

        def load_until_done() -> None:  # short bounded runs, so the load ends soon after the faults
            while not done.is_set():
                results, wall = run_level(tokens[:levels[0]], 4, 10_000, port=WEB_PORT)
                pipeline_load.append(summarise(results, wall))

        load = threading.Thread(target=load_until_done)
        load.start()
        try:
            pipeline_faults(redis=redis, worker=worker, admin_token=admin_token, probe=probe, training=not args.no_training,
                            report=pipeline_report)
        finally:
            done.set()
            load.join()
            probe.stopped.set()
        for part in pipeline_load:
            ok_ids += part["ok_ids"]
        pipeline_report["labeling during the pipeline faults"] = (
            f"{sum(p['rate'] for p in pipeline_load) / max(len(pipeline_load), 1):.1f} judgments/s, errors "
            f"{dict(sum((Counter(p['errors']) for p in pipeline_load), Counter()))}")

        checks = check_database(ok_ids)
        checks.update(pipeline_checks(CLOSE_BATCH))
    finally:
        for stop in (lambda: worker and worker.stop(), lambda: server and (server.send_signal(signal.SIGTERM), server.wait(20)),
                     redis.stop, pg.stop):
            try:
                stop()
            except Exception as exc:  # keep tearing down the rest
                print("teardown:", exc, file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\ngunicorn {args.workers} sync workers, own PostgreSQL + Redis, Celery worker (2 processes), {os.cpu_count()} cores, "
          f"{args.seconds:.0f} s per run\n")
    print(f"{'physicians':>10} {'run':>7} {'judg/s':>7} {'next p50/p99 ms':>16} {'judg p50/p99 ms':>16} {'ratio':>6}  errors by kind")
    for level, clean, faulted in rows:
        for name, r in (("clean", clean), ("faults", faulted)):
            ratio = r["rate"] / clean["rate"] if clean["rate"] else float("nan")
            errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
            print(f"{level:>10} {name:>7} {r['rate']:>7.1f} {r['next_p50']:>7.0f}/{r['next_p99']:>7.0f} "
                  f"{r['judg_p50']:>7.0f}/{r['judg_p99']:>7.0f} {ratio:>6.2f}  {errors}")
    print("\nrecovery (first successful request after the fault, probe every 50 ms):")
    for name, seconds in recoveries.items():
        print(f"  {name:<40} {'not recovered' if seconds is None else f'{seconds:.1f} s'}")
    print("\npipeline faults (under load):")
    for name, value in pipeline_report.items():
        if not name.startswith("_"):
            print(f"  {name}: {value}")
    print("\ndatabase checks:", json.dumps(checks))
    expected = {"pairs_over_assigned": 0, "duplicate_judgments": 0, "acknowledged_not_stored": 0, "counter_drift": 0,
                "close_events": 1, "close_events_unhandled": 0, "pipelines": 1, "exports_published": 1,
                "export_files_incomplete": 0, "runs_left_running": 0}
    failures = [f"{k}={checks[k]} (want {v})" for k, v in expected.items() if checks[k] != v]
    if not pipeline_report.get("_close_ok"):
        failures.append("the close during the Redis outage did not answer 200 with outcome waiting_for_broker")
    if any(v is None for v in recoveries.values()):
        failures.append("a fault never recovered")
    if any(r["errors"].get("500") for _, c, r in rows):
        failures.append("HTTP 500 under faults (a fault must surface as 503 or a dropped connection)")
    print(f"\nwhole bench: {time.monotonic() - started:.0f} s")
    print("checks:", "clean" if not failures else "FAILED: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
