"""Settings come from the environment.

With neither DATABASE_URL nor CELERY_BROKER_URL set the portal runs embedded: SQLite, media on local
disk and Celery tasks executed in-process, so one command gives a newcomer a working portal. Production
sets DJANGO_DEBUG=0, which makes DJANGO_SECRET_KEY mandatory.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-never-used-in-production"

ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "audit",
    "detection",
    "moderation",
    "webhooks",
    "api",
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
    "portal.middleware.PrivatePagesMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its refusal.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A persistent connection is checked before each request reuses it, so the first request after a
        # database restart reconnects instead of failing.
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # Refuses every login, right password or not, while the username is locked out from that address.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Password guessing at /login/, /api/auth/token/ and the Django admin: after this many failures for one
# username from one address, that pair is locked out for the cool-off time. Counted in Redis (the shared
# cache, see CACHES) in production; embedded, in the database, which every process shares too.
AXES_HANDLER = (
    "axes.handlers.cache.AxesCacheHandler"
    if os.environ.get("REDIS_CACHE_URL")
    else "axes.handlers.database.AxesDatabaseHandler"
)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# X-Forwarded-For is trusted only when proxies in front say so; otherwise a guesser could send a new one each try.
AXES_IPWARE_PROXY_COUNT = env_int("DJANGO_PROXY_COUNT", 0)
AXES_IPWARE_META_PRECEDENCE_ORDER = (["HTTP_X_FORWARDED_FOR"] if AXES_IPWARE_PROXY_COUNT else []) + ["REMOTE_ADDR"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "var" / "media"))

# Originals and heatmaps go through Django's storage API: S3 when a bucket is configured, local disk otherwise.
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"default_acl": "private", "file_overwrite": False}}
        if AWS_STORAGE_BUCKET_NAME
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Uploads: refused above these limits, with a message per file.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 40 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 100_000_000)
UPLOAD_MAX_FILES = env_int("UPLOAD_MAX_FILES", 50)
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES
# Large files stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Detection
DETECTOR_WEIGHTS_DIR = Path(os.environ.get("DETECTOR_WEIGHTS_DIR", BASE_DIR / "detection" / "weights"))
DETECTOR_DEFAULT_MODEL = os.environ.get("DETECTOR_DEFAULT_MODEL", "clip_probe_aug")
# The scenery suggestion head (manage.py train_scenery): applied to the default CLIP encoder's embeddings.
SCENERY_HEAD_DIR = Path(os.environ.get("SCENERY_HEAD_DIR", DETECTOR_WEIGHTS_DIR / "scenery"))
# How long the upload page's request waits for a worker's scenery suggestion before it gives up (none pre-selected).
SCENERY_SUGGEST_WAIT_SECONDS = float(os.environ.get("SCENERY_SUGGEST_WAIT_SECONDS", "4"))
DETECTOR_DEVICE = os.environ.get("DETECTOR_DEVICE", "cpu")
# Which framework this process runs in-process (see detection/runtime.py): "keras" on the keras worker only.
DETECTOR_FRAMEWORK = os.environ.get("DETECTOR_FRAMEWORK", "torch")
if DETECTOR_FRAMEWORK not in {"torch", "keras"}:
    raise ImproperlyConfigured(f"DETECTOR_FRAMEWORK must be torch or keras, not {DETECTOR_FRAMEWORK!r}")
# A submission queued or analysing for longer than this is re-queued by the sweeper.
ANALYSIS_STUCK_AFTER = timedelta(minutes=env_int("ANALYSIS_STUCK_AFTER_MINUTES", 15))
# A submission still received this long after its upload never reached the broker (it was away): the sweeper
# sends it. Uploads are sent the moment they commit, so anything older is owed.
ANALYSIS_RESEND_AFTER = timedelta(seconds=env_int("ANALYSIS_RESEND_AFTER_SECONDS", 60))
# Share of cleared uploads also sent to moderators ("spot check"), so live error rates are not estimated from
# flagged uploads alone (moderation.reporting.live_statistics).
SPOT_CHECK_SHARE = float(os.environ.get("SPOT_CHECK_SHARE", "0.02"))
if not 0.0 <= SPOT_CHECK_SHARE <= 1.0:
    raise ImproperlyConfigured(f"SPOT_CHECK_SHARE must be between 0 and 1, not {SPOT_CHECK_SHARE}")
# A flagged item's heatmap renders behind the analyses in its queue; still missing after this, it is asked again.
HEATMAP_RESEND_AFTER = timedelta(seconds=env_int("HEATMAP_RESEND_AFTER_SECONDS", 600))

# Celery: with no broker configured, tasks run in-process (embedded mode).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
# Results are kept only for the one task a page waits on (the upload page's scenery suggestion, ignore_result
# off); every other task records its outcome in the database. Redis, the broker's, for five minutes.
CELERY_RESULT_BACKEND = CELERY_BROKER_URL or None
CELERY_RESULT_EXPIRES = 300
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Without this Celery's Django fixup reconnects to the database before and after every task, ignoring
# CONN_MAX_AGE: a new PostgreSQL connection per task, 5 % of a worker's time draining a backlog of batched
# analyses. It then reconnects only every this many tasks; portal/celery.py applies Django's own rule
# between tasks instead, as between web requests.
CELERY_DB_REUSE_MAX = 10_000
CELERY_TASK_DEFAULT_QUEUE = "default"
# Everything that runs a network goes to the GPU workers; jobs for a Keras model are sent to queue "keras"
# instead (detection.selectors.model_queue), whose worker runs TensorFlow.
CELERY_TASK_ROUTES = {
    "moderation.tasks.submission_analyse": {"queue": "gpu"},
    "moderation.tasks.submission_reanalyse": {"queue": "gpu"},
    "detection.tasks.heatmap_make": {"queue": "heatmaps"},
    "detection.tasks.scenery_suggest": {"queue": "gpu"},
}
# Redis hands an unacknowledged message to another worker after the visibility timeout: just above the analysis
# tasks' hard time limit, so the message of a worker killed mid-analysis is redelivered within minutes, never
# while it still runs. (A worker child that dies is handed back at once: CELERY_TASK_REJECT_ON_WORKER_LOST.)
ANALYSIS_TIME_LIMIT_SECONDS = env_int("ANALYSIS_TIME_LIMIT_SECONDS", 180)
# An analysis task takes up to this many queued submissions and scores them in one network call; their
# originals are read and decoded on this many threads meanwhile (decoding releases the GIL).
ANALYSIS_BATCH_SIZE = env_int("ANALYSIS_BATCH_SIZE", 8)
ANALYSIS_DECODE_THREADS = env_int("ANALYSIS_DECODE_THREADS", 4)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", ANALYSIS_TIME_LIMIT_SECONDS + 30)
}
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-submissions": {
        "task": "moderation.tasks.submissions_sweep",
        "schedule": crontab(minute="*"),
    },
    "resend-webhook-deliveries": {
        "task": "webhooks.tasks.webhook_deliveries_sweep",
        "schedule": crontab(minute="*"),
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.AccountRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("API_THROTTLE_RATE", "600/minute"),
        "upload": os.environ.get("API_UPLOAD_THROTTLE_RATE", "120/hour"),
        # The platform's own ingestion pipeline sends every photo it receives.
        "user_ingestion": os.environ.get("API_INGESTION_THROTTLE_RATE", "6000/minute"),
        "upload_ingestion": os.environ.get("API_INGESTION_UPLOAD_THROTTLE_RATE", "600/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Photo provenance moderation API",
    "DESCRIPTION": "Submit photographs for AI-generation screening, follow their analysis and moderation.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Declared and suggested scenery are one choice set, so one enum in the schema.
    "ENUM_NAME_OVERRIDES": {"SceneryEnum": "detection.models.Scenery"},
}
# The detector's scores are an oracle for tuning an image past it: contributors see state, outcome and reason only,
# unless this lets them see their submissions' scores and verdicts too.
CONTRIBUTORS_SEE_SCORES = env_bool("CONTRIBUTORS_SEE_SCORES", False)
# Webhooks may target loopback/private addresses only where that network is the developer's own.
WEBHOOKS_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", DEBUG)
# A delivery never attempted this long after its event was emitted, or a retry this long past its due time, is sent
# again by the sweeper (the broker was away, or its message was lost); deliveries and retries are sent on time, so a
# shorter wait would only duplicate messages.
WEBHOOK_RESEND_AFTER = timedelta(minutes=env_int("WEBHOOK_RESEND_AFTER_MINUTES", 10))
# Accounts (usernames) of the platform's ingestion pipeline: their tokens get the *_ingestion rates.
API_INGESTION_ACCOUNTS = frozenset(a for a in os.environ.get("API_INGESTION_ACCOUNTS", "").split(",") if a)

# Throttle counts and login lockouts must be shared by every web process: in production they live in Redis.
REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL", "")
if not REDIS_CACHE_URL and not DEBUG:
    raise ImproperlyConfigured("REDIS_CACHE_URL must be set when DJANGO_DEBUG is off (throttles, login lockouts)")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_CACHE_URL, "KEY_PREFIX": "portal"}
        if REDIS_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Every page shows private images or names: no shared cache may keep one (PrivatePagesMiddleware).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # TLS is terminated in front of gunicorn; DJANGO_SECURE_SSL_REDIRECT=0 only for a plain-HTTP trial.
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # probed over plain HTTP from inside the network
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
