"""Settings for eventops: one flat module driven by environment variables.

Every setting has a working embedded default (SQLite, local-memory cache and
Celery's filesystem broker under ``var/``). Production sets ``DEBUG=False``,
``SECRET_KEY``, ``DATABASE_URL`` and ``REDIS_URL``. Every variable is listed in
``.env.example`` and in the README.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_float, env_int, env_list, env_str, origin
from dashboard.role_map import parse_role_map
from operations.masking import compile_patterns, split_patterns

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("EVENTOPS_VAR_DIR", str(BASE_DIR / "var")))
# The embedded defaults keep their state here (SQLite, Celery's filesystem broker).
VAR_DIR.mkdir(parents=True, exist_ok=True)

# pytest (8.2+) sets PYTEST_VERSION for its run and the processes its tests start: the
# test suite keeps the development defaults (pytest-django still runs views with DEBUG off).
RUNNING_TESTS = bool(os.environ.get("PYTEST_VERSION"))
# Off unless set: make demo (scripts/demo.sh) sets DEBUG=true, production leaves it unset.
DEBUG = env_bool("DEBUG", RUNNING_TESTS)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (set SECRET_KEY to a long random "
            "value, or DEBUG=true for local development only)"
        )
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its runserver command (TCP_NODELAY, a longer listen backlog)
    # takes the place of staticfiles' (dashboard/management/commands/runserver.py).
    "dashboard",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "template_partials",
    "axes",
    "mozilla_django_oidc",
    # The REST API (dashboard/api/); listed so its docs page uses ninja's own static files.
    "ninja",
    # /metrics (dashboard/views/metrics.py); its database wrappers are not used.
    "django_prometheus",
    "operations",
]

MIDDLEWARE = [
    # First and last: request counts and latencies by view for /metrics.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
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
    # Last, as django-axes asks: turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
CACHES: dict[str, dict[str, Any]]
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
    # No Redis: a cache on disk, shared by every process of this machine (the web
    # server's workers and the Celery worker), so one refresh serves them all; a
    # local-memory cache would be one copy per process, each refreshed on its own.
    # Writes are atomic renames; refresh locks are flock'd files (operations/cache.py).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # One entry per page read, environment and queue page; culling (a third of
            # the files, when over the limit) is a directory scan, so keep the limit high.
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }
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
# Past its TTL a read is still served, silently, for this long while one caller (or a
# background thread) refreshes it; older than that, callers wait for the refresh.
EVENTOPS_CACHE_STALE_SECONDS = env_int("EVENTOPS_CACHE_STALE_SECONDS", 60, minimum=0)
# The dashboard's public address (https://eventops.example.com), for absolute links in API
# answers and notifications; empty: the host each request came to.
EVENTOPS_BASE_URL = env_str("EVENTOPS_BASE_URL").rstrip("/")
# SNS topics whose HTTPS deliveries POST /hooks/sns accepts (comma-separated ARNs): the
# alarms topic. Empty: the hook refuses everything, and beat polls DescribeAlarmHistory.
EVENTOPS_SNS_TOPIC_ARNS = env_list("EVENTOPS_SNS_TOPIC_ARNS", [])
# Where ended operations and new or regressed failure groups are announced: Slack-compatible
# incoming webhook URLs (comma-separated) and an SNS topic ARN (operations/notifications.py).
EVENTOPS_NOTIFY_WEBHOOKS = env_list("EVENTOPS_NOTIFY_WEBHOOKS", [])
EVENTOPS_NOTIFY_SNS_TOPIC_ARN = env_str("EVENTOPS_NOTIFY_SNS_TOPIC_ARN")
# /metrics is open to this bearer token, or to clients in these networks (CIDRs).
EVENTOPS_METRICS_TOKEN = env_str("EVENTOPS_METRICS_TOKEN")
EVENTOPS_METRICS_ALLOWED_NETWORKS = env_list(
    "EVENTOPS_METRICS_ALLOWED_NETWORKS", ["127.0.0.1/32", "::1/128"]
)
for _network in EVENTOPS_METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"EVENTOPS_METRICS_ALLOWED_NETWORKS: {_network!r} is not a network (CIDR)"
        ) from None
EVENTOPS_POLL_SECONDS = env_int("EVENTOPS_POLL_SECONDS", 15, minimum=2)
# The overview flags (and sorts first) a source queue past either of these.
EVENTOPS_BACKLOG_WARN_MESSAGES = env_int("EVENTOPS_BACKLOG_WARN_MESSAGES", 1000, minimum=1)
EVENTOPS_BACKLOG_WARN_AGE_SECONDS = env_int("EVENTOPS_BACKLOG_WARN_AGE_SECONDS", 300, minimum=1)
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
# Receive -> send -> delete pipelines one redrive runs at once (FIFO: across message groups).
EVENTOPS_REDRIVE_CONCURRENCY = env_int("EVENTOPS_REDRIVE_CONCURRENCY", 8, minimum=1, maximum=32)
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
# Without an SNS subscription (EVENTOPS_SNS_TOPIC_ARNS empty), alarm changes are read from
# DescribeAlarmHistory this often, so the history outlives AWS's 14 days unviewed.
EVENTOPS_ALARM_POLL_SECONDS = env_int("EVENTOPS_ALARM_POLL_SECONDS", 60, minimum=30)
CELERY_BEAT_SCHEDULE["alarm-history"] = {
    "task": "operations.poll_alarm_history",
    "schedule": float(EVENTOPS_ALARM_POLL_SECONDS),
    "options": {"expires": EVENTOPS_ALARM_POLL_SECONDS},
}
# REST API Idempotency-Keys are kept 24 hours.
CELERY_BEAT_SCHEDULE["api-idempotency-purge"] = {
    "task": "operations.purge_idempotency_keys",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- auth ------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# django-axes first (it refuses a locked-out account before anything checks a password),
# then local passwords (dashboard/auth.py: off with EVENTOPS_PASSWORD_LOGIN=false), then
# OpenID Connect (dashboard/oidc.py: inert until OIDC_RP_CLIENT_ID is set).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "dashboard.auth.PasswordBackend",
    "dashboard.oidc.RoleMappingBackend",
]
EVENTOPS_PASSWORD_LOGIN = env_bool("EVENTOPS_PASSWORD_LOGIN", True)
# Every mutation (redrive, replay, re-publish, edit, delete, cancel) hidden and refused,
# in pages and commands, for everyone (operations/access.py).
EVENTOPS_READ_ONLY = env_bool("EVENTOPS_READ_ONLY", False)

# Failed logins: this many lock the account *and* the address out for this long (axes).
EVENTOPS_LOGIN_FAILURE_LIMIT = env_int("EVENTOPS_LOGIN_FAILURE_LIMIT", 5, minimum=1)
EVENTOPS_LOGIN_LOCKOUT_MINUTES = env_int("EVENTOPS_LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = EVENTOPS_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=EVENTOPS_LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# OpenID Connect single sign-on (mozilla-django-oidc; dashboard/oidc.py). Configured when
# OIDC_RP_CLIENT_ID is set, with the provider's discovery document (fetched once, on first
# use) or its endpoints named one by one (these win over discovery).
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
OIDC_OP_DISCOVERY_URL = env_str("OIDC_OP_DISCOVERY_URL")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
OIDC_TIMEOUT = env_float("OIDC_TIMEOUT", 10.0, minimum=0.1)
OIDC_STORE_ID_TOKEN = True  # the provider's logout wants it back as id_token_hint
OIDC_OP_LOGOUT_URL_METHOD = "dashboard.oidc.provider_logout_url"
OIDC_AUTHENTICATE_CLASS = "dashboard.oidc.AuthenticationRequestView"
OIDC_CALLBACK_CLASS = "dashboard.oidc.CallbackView"
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
EVENTOPS_OIDC_PROVIDER_LABEL = env_str("EVENTOPS_OIDC_PROVIDER_LABEL", "single sign-on")
EVENTOPS_OIDC_GROUPS_CLAIM = env_str("EVENTOPS_OIDC_GROUPS_CLAIM", "groups")
# "sre-oncall=operator,engineering=viewer,prod-admins=admin@prod": the provider's groups
# and the eventops groups they grant; checked here, at startup.
EVENTOPS_OIDC_ROLE_MAP = parse_role_map(env_str("EVENTOPS_OIDC_ROLE_MAP"))
if OIDC_RP_CLIENT_ID and not (
    OIDC_OP_DISCOVERY_URL or (OIDC_OP_AUTHORIZATION_ENDPOINT and OIDC_OP_TOKEN_ENDPOINT)
):
    raise ImproperlyConfigured(
        "OIDC_RP_CLIENT_ID is set: set OIDC_OP_DISCOVERY_URL too (or "
        "OIDC_OP_AUTHORIZATION_ENDPOINT, OIDC_OP_TOKEN_ENDPOINT, OIDC_OP_USER_ENDPOINT and "
        "OIDC_OP_JWKS_ENDPOINT)"
    )
if not EVENTOPS_PASSWORD_LOGIN and not OIDC_RP_CLIENT_ID:
    raise ImproperlyConfigured(
        "EVENTOPS_PASSWORD_LOGIN=false leaves no way to sign in: configure OpenID Connect "
        "(OIDC_RP_CLIENT_ID, OIDC_OP_DISCOVERY_URL) as well"
    )

# The provider's origins (discovery document and end-session endpoint), for the CSP.
SSO_ORIGINS = sorted(
    {origin(url) for url in (OIDC_OP_DISCOVERY_URL, OIDC_OP_LOGOUT_ENDPOINT) if origin(url)}
)

# Logs Insights queries a person can start from the archive's event browser.
EVENTOPS_LOGS_MAX_WINDOW_HOURS = env_int("EVENTOPS_LOGS_MAX_WINDOW_HOURS", 24, minimum=1)
EVENTOPS_LOGS_QUERIES_PER_MINUTE = env_int("EVENTOPS_LOGS_QUERIES_PER_MINUTE", 4, minimum=1)
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
# /healthz is probed over plain HTTP by load balancers, /metrics scraped by Prometheus.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

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
        # Logging out posts to /logout/, which redirects to the provider's end-session
        # page when signed in through it: form-action covers that redirect too.
        "form-action": ["'self'", *SSO_ORIGINS],
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
        # Every successful login at INFO; failures and lockouts are warnings.
        "axes": {"level": "WARNING"},
    },
}
