"""Settings shared by every profile. Everything that differs between machines
comes from the environment, with defaults that are safe on a laptop."""

import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-" + "x" * 20)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "csp",
    "annotation",
    "training",
    "frontend",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "frontend.middleware.DomainErrorMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a lockout raised by its backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database: DATABASE_URL, or a SQLite file for the quick local default.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two raters asking for work at once
    # serialise instead of both reading the same free slot (see pair_lease_next).
    # WAL: readers never wait for a writer, so pages keep answering while an import writes
    # (writers still take turns: a big import's write phase delays judgments, never reads).
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30,
                                       "init_command": "PRAGMA journal_mode=WAL;"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A persistent connection that died with a database restart is replaced before the next
    # request uses it, instead of failing that request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every way a password is set runs these: the admin's forms (Django), the raters API and
# `manage.py add_rater` (annotation.labeling.services.password_check).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it counts failed log-ins (log-in page and Django admin) and refuses a
# locked-out (username, address) before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_HOURS", 0.25))  # hours
# Per username and address together: a colleague mistyping behind the same hospital NAT does
# not lock everyone out, and nobody can lock a physician out from elsewhere.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "frontend/locked_out.html"

# A session lasts one working day from log-in (not renewed on each request, which would write
# the session row on the judging hot path); logging out or deactivation ends it at once.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", 10 * 3600))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# Content-Security-Policy (django-csp 4): scripts only from our own static files, never inline
# (`json_script` blocks are data, not executed); inline styles stay allowed for the SVG charts'
# style attributes. The API docs page adds the CDN it loads Swagger UI from (config/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": os.environ.get("DEFAULT_FILE_STORAGE", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.authentication.ProfileTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["annotation.permissions.IsActiveUser"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.ClinPrefAutoSchema",
    "EXCEPTION_HANDLER": "annotation.errors.api_exception_handler",
    # Every body is read with a size bound and JSON with a nesting bound (annotation/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "annotation.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ClinPref API",
    "DESCRIPTION": "Clinical preference annotation: batches, pairs, assignments, judgments, agreement, exports and training.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every admin operation: logged-in, active users only (admins in production).
    "SERVE_PERMISSIONS": ["annotation.permissions.IsActiveUser"],
}

# --- Celery: tasks always run in a worker, never inside a web request. The broker comes from
# CELERY_BROKER_URL or REDIS_URL; local.py falls back to an embedded one, production.py refuses to
# start without one, and only test.py runs tasks eagerly.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
CELERY_TASK_ALWAYS_EAGER = False
# Nothing reads task results: runs and events record their outcome on their rows. Ignoring them
# also keeps a send from waiting on a result store that is down with the broker.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Long training tasks: a message is acknowledged only after the task finishes, a worker
# that dies hands it back, and no worker hoards messages it cannot start yet.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
# Longer than the longest training run, or Redis hands an unacknowledged run to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 48 * 3600)),
                                   # A broker that is down must fail a send quickly, not hold a web request.
                                   "socket_connect_timeout": 2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_ROUTES = {"training.tasks.train_run": {"queue": "gpu"}, "training.tasks.round_generate": {"queue": "gpu"}}

# --- the product's own knobs
CLINPREF = {
    "LEASE_SECONDS": int(os.environ.get("CLINPREF_LEASE_SECONDS", 15 * 60)),
    "MAX_TEXT_CHARS": int(os.environ.get("CLINPREF_MAX_TEXT_CHARS", 50_000)),
    "MAX_IMPORT_LINES": int(os.environ.get("CLINPREF_MAX_IMPORT_LINES", 1_000_000)),
    # Imports with more lines than this run as a background task (ImportJob); the API answers 202.
    "IMPORT_INLINE_MAX_LINES": int(os.environ.get("CLINPREF_IMPORT_INLINE_MAX_LINES", 5_000)),
    # The dashboard's upload refuses files above this; use `manage.py import_pairs` for them.
    "MAX_UPLOAD_BYTES": int(os.environ.get("CLINPREF_MAX_UPLOAD_BYTES", 512 * 1024 * 1024)),
}
# Agreement reports of batches with more judgment rows than this are computed by a task and
# served from the cache; smaller ones are computed on first view.
AGREEMENT_INLINE_MAX_JUDGMENTS = int(os.environ.get("AGREEMENT_INLINE_MAX_JUDGMENTS", 200_000))

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# What one request may carry: about 100,000 short pairs of JSONL. Bigger files go through the
# dashboard's upload (streamed to disk, imported in the background) or `manage.py import_pairs`.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", 32 * 1024 * 1024))

# Object storage for exports and model artifacts when web and GPU workers are on different
# hosts (DEFAULT_FILE_STORAGE=storages.backends.s3.S3Storage): django-storages reads these.
for _name in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL", "AWS_S3_REGION_NAME", "AWS_ACCESS_KEY_ID",
              "AWS_SECRET_ACCESS_KEY", "AWS_LOCATION"):
    if os.environ.get(_name):
        globals()[_name] = os.environ[_name]

# Agreement reports: bootstrap resamples behind every 95% interval (seeded, so reports are reproducible).
AGREEMENT_BOOTSTRAP_RESAMPLES = int(os.environ.get("AGREEMENT_BOOTSTRAP_RESAMPLES", 1000))
