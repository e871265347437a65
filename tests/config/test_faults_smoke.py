"""The smoke version of bench/faults.py: its own PostgreSQL and Redis, 10 simulated physicians,
gunicorn workers SIGKILLed, PostgreSQL restarted, Redis stopped during a close, the Celery worker
SIGKILLed in the middle of the close's gate and export; then every acknowledged judgment stored
once, no pair over its raters, counters right, one pipeline, one complete export."""

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_faults_bench_smoke_keeps_every_judgment_and_starts_the_pipeline_once():
    missing = [what for what, ok in (("PostgreSQL server binaries", glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
                                     ("redis-server", shutil.which("redis-server"))) if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing - CI must run this test")
        pytest.skip(f"{', '.join(missing)} not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    out = subprocess.run([sys.executable, "bench/faults.py", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    report = out.stdout + out.stderr[-3000:]
    assert out.returncode == 0, report
    assert "checks: clean" in out.stdout, report
    assert "outcome 'waiting_for_broker'" in out.stdout and "killed mid-dispatch" in out.stdout, report
