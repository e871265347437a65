"""Quick local default: SQLite, DEBUG on, and Celery on an embedded broker that needs no server.

With no CELERY_BROKER_URL / REDIS_URL the broker is kombu's filesystem transport: each message is
a file under CLINPREF_BROKER_DIR (default .celery/ in the checkout), so the web process queues
tasks and the worker that `make run` starts beside it consumes them. Nothing runs in a request."""

import os

from .base import *  # noqa: F401,F403
from .base import BASE_DIR, CELERY_BROKER_URL, env_bool

DEBUG = env_bool("DEBUG", True)

if not CELERY_BROKER_URL:
    EMBEDDED_BROKER_DIR = os.path.abspath(os.environ.get("CLINPREF_BROKER_DIR", BASE_DIR / ".celery"))
    _messages = os.path.join(EMBEDDED_BROKER_DIR, "messages")
    _processed = os.path.join(EMBEDDED_BROKER_DIR, "processed")
    # kombu needs the folders to exist; the web process and the worker both import these settings.
    for _folder in (_messages, _processed, os.path.join(EMBEDDED_BROKER_DIR, "control")):
        os.makedirs(_folder, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # One folder for in and out: producers write where the worker reads.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _messages,
        "data_folder_out": _messages,
        "processed_folder": _processed,
        "control_folder": os.path.join(EMBEDDED_BROKER_DIR, "control"),
    }
    CELERY_RESULT_BACKEND = None  # results are ignored (base.py); nothing to store them in
    # The filesystem transport polls; a short interval keeps a close-to-pipeline delay under a second.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.5
    CELERY_BEAT_SCHEDULE_FILENAME = os.path.join(EMBEDDED_BROKER_DIR, "beat-schedule")
