#!/usr/bin/env bash
# Install, migrate, load the demo and serve on http://127.0.0.1:8000 with the embedded
# defaults: SQLite, Celery in eager mode, CPU. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.local}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py load_demo
echo
echo "ClinPref is at http://127.0.0.1:${PORT:-8000}/  (API docs: /api/docs/)  Ctrl-C to stop."
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT:-8000}" --noreload
