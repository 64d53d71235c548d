"""Switchboard settings, read from the environment.

With no environment variables at all, Switchboard runs on its embedded default: a SQLite
file under ``var/``, Celery tasks executed in-process and an in-memory channel layer. Setting
``DATABASE_URL`` and ``REDIS_URL`` switches to the production shape: PostgreSQL, Celery
workers through Redis, and channels-redis. A malformed value stops start-up with its name.
"""

import hashlib
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


VAR_DIR = Path(env_str("SWITCHBOARD_VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not DATABASE_URL

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set")
    # The embedded default keeps a generated key beside its database, so sessions
    # survive a restart without anyone having to invent a secret.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_htmx",
    "template_partials",
    "channels",
    "csp",
    "orchestration",
    "tools_registry",
    "console",
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
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "console.asgi.application"

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
                "console.context_processors.console_roles",
            ],
        },
    },
]

if EMBEDDED:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "switchboard.sqlite3",
            "OPTIONS": {
                # IMMEDIATE makes a writing transaction take the lock up front, so two
                # concurrent writers queue instead of failing half-way with "locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    try:
        DATABASES = {
            "default": dj_database_url.parse(
                DATABASE_URL, conn_max_age=600, conn_health_checks=True
            )
        }
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    # The engine's single-statement writes (services.checkpoint) are prepared on the server,
    # planned once per connection; psycopg leaves preparing off without this. Django's own
    # queries use client-side binding, which never prepares, so nothing else changes. Turn
    # it off behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in
    # transaction mode, or without max_prepared_statements).
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serving straight from the finders keeps `make run` free of a collectstatic step.
WHITENOISE_USE_FINDERS = True

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "console.access.RolePermissionBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not EMBEDDED and not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

# Agent and customer text is shown on every screen; no inline script or style may run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}

# Ingest limits: a ticket larger than this is refused with 413 before it is parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "console.api.errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# Celery: tasks take ids and find their work in the database; no result backend is used.
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600)}
CELERY_TASK_DEFAULT_QUEUE = "switchboard"
CELERY_BEAT_SCHEDULE = {
    "requeue-expired-steps": {
        "task": "orchestration.requeue_expired_steps",
        "schedule": env_int("SWEEP_INTERVAL_SECONDS", 30),
    },
    # Unanswered approvals of tool calls past their time count as rejected.
    "expire-tool-approvals": {
        "task": "tools_registry.expire_tool_approvals",
        "schedule": env_int("SWEEP_INTERVAL_SECONDS", 30),
    },
    # The learner: once enough new decisions are in (LearningSettings), and on a schedule.
    "learn-when-due": {
        "task": "orchestration.learn_if_due",
        "schedule": env_int("LEARNING_CHECK_INTERVAL_SECONDS", 60),
    },
    "learn-on-schedule": {
        "task": "orchestration.learn",
        "schedule": env_int("LEARNING_INTERVAL_SECONDS", 24 * 3600),
    },
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Model provider for the drafter. "local" is deterministic and needs no network.
MODEL_PROVIDER = env_str("MODEL_PROVIDER", "local")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = env_int("OPENAI_TIMEOUT_SECONDS", 30)
if MODEL_PROVIDER not in ("local", "openai"):
    raise ImproperlyConfigured(
        f"MODEL_PROVIDER must be 'local' or 'openai', not {MODEL_PROVIDER!r}"
    )
if MODEL_PROVIDER == "openai" and not OPENAI_API_KEY:
    raise ImproperlyConfigured("MODEL_PROVIDER=openai needs OPENAI_API_KEY")

# Default per-step time limits, for workflows whose config sets none (limits.step_soft_seconds,
# limits.step_hard_seconds). Past the soft one the agent is interrupted and the step retried
# as transient; the hard one is the step's lease: once it expires the sweeper hands the step
# to another worker, and whatever the first one still records is dropped.
STEP_SOFT_TIME_LIMIT_SECONDS = env_int("STEP_SOFT_TIME_LIMIT_SECONDS", 60)
STEP_HARD_TIME_LIMIT_SECONDS = env_int("STEP_HARD_TIME_LIMIT_SECONDS", 120)
if STEP_SOFT_TIME_LIMIT_SECONDS > STEP_HARD_TIME_LIMIT_SECONDS:
    raise ImproperlyConfigured("STEP_SOFT_TIME_LIMIT_SECONDS must not exceed the hard limit")
# A worker that finishes a step runs the run's next step itself, without a trip through the
# broker, until it has spent this long on one message; then the next step is queued, so that
# one long run cannot keep a worker from the others.
STEP_CONTINUE_SECONDS = env_float("STEP_CONTINUE_SECONDS", 2.0)
# On PostgreSQL the engine's common writes (a run's start, a step's checkpoint, a pause for a
# person, a person's decision) are each one statement; off, they take the ORM transaction,
# which records the same (a test holds the two paths to the same result).
ENGINE_SINGLE_STATEMENT_WRITES = env_bool("ENGINE_SINGLE_STATEMENT_WRITES", True)
# The last resort against a wedged worker process (prefork pools only): Celery kills a task
# that runs this long. It must exceed the longest hard step limit plus the continuation time.
STEP_TASK_TIME_LIMIT_SECONDS = env_int("STEP_TASK_TIME_LIMIT_SECONDS", 900)
# Per-tool circuit breaker: open after this many failures within the window, let one probe
# through after the cool-down.
TOOL_BREAKER_FAILURES = env_int("TOOL_BREAKER_FAILURES", 5)
TOOL_BREAKER_WINDOW_SECONDS = env_int("TOOL_BREAKER_WINDOW_SECONDS", 60)
TOOL_BREAKER_COOLDOWN_SECONDS = env_int("TOOL_BREAKER_COOLDOWN_SECONDS", 30)
# A person's approval of one tool call is asked for this long; unanswered, it counts as
# rejected.
TOOL_APPROVAL_TTL_SECONDS = env_int("TOOL_APPROVAL_TTL_SECONDS", 24 * 3600)
# Why an operator changed or refused a draft: the codes the task page offers, in order.
FEEDBACK_REASON_CODES = {
    "wrong_category": "Wrong category",
    "wrong_urgency": "Wrong urgency",
    "wrong_facts": "Wrong facts",
    "tone": "Tone",
    "missing_step": "Missing step",
    "policy": "Policy",
    "other": "Other",
}
# Grants that expire within this many days are flagged for review.
GRANT_REVIEW_DAYS = env_int("GRANT_REVIEW_DAYS", 7)
# The key the post_webhook tool signs its requests with, which receivers verify. Without one
# set (or set empty), it is derived from SECRET_KEY: never empty, and not the key itself.
WEBHOOK_SIGNING_SECRET = (
    env_str("WEBHOOK_SIGNING_SECRET")
    or hashlib.sha256(f"switchboard-webhook-signing:{SECRET_KEY}".encode()).hexdigest()
)
# How long a pending step's message may wait before the sweeper sends it again.
STEP_REDISPATCH_SECONDS = env_int("STEP_REDISPATCH_SECONDS", 300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        # One line per task is noise on the embedded default, where every step is a task.
        "celery.app.trace": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        # The BM25 library logs every index it builds.
        "bm25s": {"level": "WARNING"},
    },
}
