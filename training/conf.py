"""Training settings as the code reads them: CLINPREF[name] in Django settings, else the
CLINPREF_<name> environment variable, else the default. One reader, so every module agrees."""

from __future__ import annotations

import json
import os
from datetime import timedelta

from django.conf import settings


def training_setting(name: str, default):
    """CLINPREF[name] from settings, else the CLINPREF_<name> environment variable (JSON for
    dicts such as TRAINING_AUTO_PARAMS), else default."""
    if name in getattr(settings, "CLINPREF", {}):
        return settings.CLINPREF[name]
    raw = os.environ.get(f"CLINPREF_{name}")
    if raw is None:
        return default
    return json.loads(raw) if isinstance(default, dict) or (default is None and raw.startswith("{")) else raw


def heartbeat_seconds() -> float:
    return float(training_setting("TRAINING_HEARTBEAT_SECONDS", 30))


def stale_after() -> timedelta:
    """A running run whose heartbeat is older than this has lost its worker."""
    return timedelta(seconds=float(training_setting("TRAINING_STALE_SECONDS", 10 * 60)))
