"""Production: secrets from the environment, secure cookies and headers.
`manage.py check --deploy --settings=config.settings.production` is clean."""

import os

from .base import *  # noqa: F401,F403
from .base import SPECTACULAR_SETTINGS, STORAGES, env_bool
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
