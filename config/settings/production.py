"""Production: secrets from the environment, secure cookies and headers.
`manage.py check --deploy --settings=config.settings.production` is clean."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import CELERY_BROKER_URL, SPECTACULAR_SETTINGS, STORAGES, env_bool
from .secrets import secret_key_check

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "")
secret_key_check(SECRET_KEY, allow_weak=env_bool("CLINPREF_ALLOW_WEAK_SECRET", False))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 31536000))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = 8 * 3600
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
SESSION_COOKIE_SAMESITE = "Lax"
# The API schema and docs list every admin operation: admins only in production.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "SERVE_PERMISSIONS": ["annotation.permissions.IsAdminRole"]}

# Tasks run in workers, never inside a request: without a real broker production does not start.
if not CELERY_BROKER_URL or CELERY_BROKER_URL.split(":", 1)[0] in ("memory", "filesystem"):
    raise ImproperlyConfigured(
        "Set CELERY_BROKER_URL (or REDIS_URL) to a real broker, e.g. redis://redis:6379/0: production never runs tasks "
        f"inside a web request and has no embedded broker (got {CELERY_BROKER_URL!r})."
    )
if env_bool("CELERY_TASK_ALWAYS_EAGER", False):
    raise ImproperlyConfigured("CELERY_TASK_ALWAYS_EAGER is for the test settings only; unset it in production.")
