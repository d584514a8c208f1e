"""Settings for eventops: one flat module driven by environment variables.

Every setting has a working embedded default (SQLite, local-memory cache and
Celery's filesystem broker under ``var/``). Production sets ``DEBUG=False``,
``SECRET_KEY``, ``DATABASE_URL`` and ``REDIS_URL``. Every variable is listed in
``.env.example`` and in the README.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_float, env_int, env_list, env_str
from operations.masking import compile_patterns, split_patterns

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVENTOPS_VAR_DIR", str(BASE_DIR / "var")))
# The embedded defaults keep their state here (SQLite, Celery's filesystem broker).
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "template_partials",
    "operations",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # After the login check: /env/<name>/ is activated for the view (dashboard/environment.py).
    "dashboard.environment.EnvironmentMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.navigation",
            ],
        },
    }
]

# --- database ------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    try:
        DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "eventops.sqlite3"),
            # Celery workers and the web server write concurrently: WAL lets readers go on
            # while a task writes its progress, and NORMAL sync is safe with WAL.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache and Celery ------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "eventops",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Tasks are acknowledged late; Redis hands a killed worker's task back after this
    # many seconds (kombu's default is an hour), so an interrupted redrive resumes soon.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=30)
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "filesystem://"
    _celery_dir = VAR_DIR / "celery"
    for _folder in ("out", "processed", "control"):
        (_celery_dir / _folder).mkdir(parents=True, exist_ok=True)
    # data_folder_in and data_folder_out must be the same folder (RECIPES.md).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "out"),
        "data_folder_out": str(_celery_dir / "out"),
        "processed_folder": str(_celery_dir / "processed"),
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }

CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT"
    )

# --- AWS ---------------------------------------------------------------------------
# boto3 itself reads AWS_ENDPOINT_URL, AWS_DEFAULT_REGION and AWS_PROFILE; they are read
# here too so the dashboard can pass them on and show where it is pointed. An empty
# region leaves it to the profile's configuration (``operations.aws.client.region()``
# resolves it, falling back to us-east-1 only when nothing sets one).
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
AWS_REGION = env_str("AWS_REGION") or env_str("AWS_DEFAULT_REGION")
AWS_PROFILE = env_str("AWS_PROFILE")
AWS_CONNECT_TIMEOUT = env_float("AWS_CONNECT_TIMEOUT", 3.0, minimum=0.1)
AWS_READ_TIMEOUT = env_float("AWS_READ_TIMEOUT", 10.0, minimum=0.1)
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 5, minimum=1, maximum=20)
AWS_MAX_POOL_CONNECTIONS = env_int("AWS_MAX_POOL_CONNECTIONS", 20, minimum=1)

# The AWS environments (accounts and Regions) the dashboard looks after, in a TOML file
# (operations/environments.py); empty: one environment, "default", from the AWS_* above.
EVENTOPS_ENVIRONMENTS_FILE = env_str("EVENTOPS_ENVIRONMENTS_FILE")
EVENTOPS_RESOURCE_PREFIX = env_str("EVENTOPS_RESOURCE_PREFIX")
EVENTOPS_CACHE_TTL = env_int("EVENTOPS_CACHE_TTL", 15, minimum=0)
# Masking of sensitive values in bodies and attributes (operations/masking.py): on unless
# EVENTOPS_MASKING=off; extra key names (comma-separated) and extra regular expressions
# (a JSON array, or comma-separated outside brackets).
EVENTOPS_MASKING = env_bool("EVENTOPS_MASKING", True)
EVENTOPS_MASK_KEYS = env_list("EVENTOPS_MASK_KEYS", [])
EVENTOPS_MASK_PATTERNS = split_patterns(env_str("EVENTOPS_MASK_PATTERNS"))
try:
    compile_patterns(EVENTOPS_MASK_PATTERNS)
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from error
EVENTOPS_POLL_SECONDS = env_int("EVENTOPS_POLL_SECONDS", 15, minimum=2)
# Rules, targets, archives, event logs and event source mappings change only on deploys.
EVENTOPS_TOPOLOGY_TTL = env_int("EVENTOPS_TOPOLOGY_TTL", 300, minimum=0)
# Tables the correlation page and the replay preview read; empty = discover them by name.
EVENTOPS_IDEMPOTENCY_TABLES = env_str("EVENTOPS_IDEMPOTENCY_TABLES")
EVENTOPS_OUTBOX_TABLES = env_str("EVENTOPS_OUTBOX_TABLES")
# Peeking at a DLQ hides the messages it receives for this long (SQS has no read-only peek).
EVENTOPS_PEEK_VISIBILITY_SECONDS = env_int(
    "EVENTOPS_PEEK_VISIBILITY_SECONDS", 5, minimum=0, maximum=43200
)
EVENTOPS_PEEK_MAX_RECEIVES = env_int("EVENTOPS_PEEK_MAX_RECEIVES", 10, minimum=1, maximum=100)
# The most messages one DLQ scan reads (operations/triage/scan.py).
EVENTOPS_SCAN_MAX = env_int("EVENTOPS_SCAN_MAX", 10_000, minimum=1, maximum=1_000_000)
# A running redrive whose worker stops reporting for this long may be resumed by another.
EVENTOPS_REDRIVE_LEASE_SECONDS = env_int("EVENTOPS_REDRIVE_LEASE_SECONDS", 60, minimum=10)
# Whole-queue redrives use SQS StartMessageMoveTask on real AWS (never on an emulator).
EVENTOPS_NATIVE_REDRIVE = env_bool("EVENTOPS_NATIVE_REDRIVE", False)
EVENTOPS_NATIVE_POLL_SECONDS = env_int("EVENTOPS_NATIVE_POLL_SECONDS", 5, minimum=1)
EVENTOPS_REPLAY_POLL_SECONDS = env_int("EVENTOPS_REPLAY_POLL_SECONDS", 10, minimum=1)
# Celery beat runs the sweeper this often: it re-enqueues operations pending for over a
# minute and resumes running ones whose worker died (``manage.py operations sweep`` once).
EVENTOPS_SWEEP_SECONDS = env_int("EVENTOPS_SWEEP_SECONDS", 60, minimum=10)
CELERY_BEAT_SCHEDULE = {
    "operations-sweep": {
        "task": "operations.sweep",
        "schedule": float(EVENTOPS_SWEEP_SECONDS),
        # A sweep that waited a whole interval behind a long task is superseded.
        "options": {"expires": EVENTOPS_SWEEP_SECONDS},
    }
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- auth ------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)

# --- i18n and static --------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))

# --- security -----------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS >= 31536000)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed over plain HTTP by load balancers.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- logging ----------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
