#!/usr/bin/env bash
# Install, migrate, load the demo and serve on http://127.0.0.1:8000 with the embedded defaults:
# SQLite, CPU, and a real Celery worker (with beat) beside the web server on an embedded broker
# (kombu's filesystem transport under .celery/, no extra server). Closing a batch answers at once;
# the worker runs the gate, the export and training. Safe to run again; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py load_demo

pids=()
stop() {
  trap - INT TERM EXIT
  # TERM lets the worker finish its warm shutdown (a running task is handed back); whatever is
  # still up after 15 s is killed.
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 30); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.5
  done
  # The worker's pool processes go with it, even when it had to be killed.
  children=$(for pid in "${pids[@]}"; do ps -o pid= --ppid "$pid" 2>/dev/null; done)
  kill -KILL "${pids[@]}" $children 2>/dev/null || true
}
trap stop INT TERM EXIT

# Both queues (default: events, exports; gpu: training runs) and beat (the stale-run reaper, the
# outbox re-send) in one process; two pool processes so a training run never blocks the rest.
.venv/bin/celery -A config worker -B -Q default,gpu --concurrency 2 --without-gossip --without-mingle \
  --without-heartbeat --loglevel "${CELERY_LOG_LEVEL:-WARNING}" &
pids+=($!)
.venv/bin/python manage.py runserver "127.0.0.1:${PORT:-8000}" --noreload &
pids+=($!)
echo
echo "ClinPref is at http://127.0.0.1:${PORT:-8000}/  (API docs: /api/docs/), with a Celery worker beside it.  Ctrl-C stops both."
# Whichever stops first (Ctrl-C, or a crash) takes the other down with it.
wait -n "${pids[@]}" || true
