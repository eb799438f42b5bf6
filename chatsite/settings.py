"""Parley's one settings module: everything that varies comes from the environment.

Defaults serve a laptop (SQLite in WAL mode, an in-process hub); DATABASE_URL
and REDIS_URL switch to PostgreSQL and Redis (shared cache). Every variable is documented in
.env.example. Secrets never fall back to a baked-in value outside DEBUG.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A .env beside manage.py (or PARLEY_ENV_FILE) is read if present; real environment variables win.
environ.Env.read_env(env.str("PARLEY_ENV_FILE", default=str(BASE_DIR / ".env")), overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Put SECRET_KEY=<a long random string> in the environment or in .env "
            "(`make run` writes one for you), or set DEBUG=1 for local development."
        )
    SECRET_KEY = "insecure-debug-only-key"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "chat",
    "axes",  # sign-in throttling (chat/login_throttle.py); last, as its docs ask
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chat.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "chat.audit.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a locked-out sign-in into chat.login_throttle's page
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

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
                "chat.context_processors.parley",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env.str("SQLITE_PATH", default=str(BASE_DIR / "parley.sqlite3")),
            # Keep connections: Channels closes "old" ones around every database hop, and with
            # Django's default of 0 each hop reopened the file and re-ran the PRAGMAs (~2 ms).
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock
                # at BEGIN so two writers queue on the busy timeout instead of one failing
                # with "database is locked" when it tries to upgrade a read lock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # Tests use a real file (WAL, several threads) rather than a shared-cache memory db.
            "TEST": {"NAME": env.str("SQLITE_TEST_PATH", default="") or None},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels and Redis ------------------------------------------------------------
# No channel layer: frames reach sockets through chat's in-process hub, never through
# Channels' layer. With a layer configured, every consumer also blocks on a layer receive,
# which on channels_redis is a BZPOPMIN of 5 s under redis-py's 5 s socket timeout: every
# idle socket was closed with 1011 after ~6 s, and a Redis outage would close them all.
CHANNEL_LAYERS: dict[str, dict[str, object]] = {}
# Redis (REDIS_URL) holds what several processes must share: Django's cache (counters,
# catalogue invalidation). Timeouts bound every command: a Redis that stops answering
# costs a request a few seconds, never a hang.
REDIS_URL = env.str("REDIS_URL", default="")
# Prefix of Parley's keys and channels in Redis (several deployments may share one Redis).
PARLEY_CACHE_PREFIX = env.str("PARLEY_CACHE_PREFIX", default="parley")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
            "KEY_PREFIX": PARLEY_CACHE_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": "parley"}}

# --- Auth ---------------------------------------------------------------------------
# django-axes refuses a locked-out sign-in before Django checks the password.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# After this many failed sign-ins for one user name, or from one address, both are refused
# for PARLEY_LOGIN_LOCKOUT_MINUTES (every further failure restarts the wait). A name that
# does not exist counts the same, so the lockout reveals nothing about which accounts exist.
AXES_FAILURE_LIMIT = env.int("PARLEY_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.float("PARLEY_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "chat.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "chat.login_throttle.locked_out"
# Not reset on success: one real sign-in would otherwise wipe an address's failures.
AXES_RESET_ON_SUCCESS = False
# Reverse proxies in front of Daphne that append the client's address to X-Forwarded-For
# (0: Parley is reached directly and the header is ignored, since clients can forge it).
PARLEY_PROXY_COUNT = env.int("PARLEY_PROXY_COUNT", default=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Closed by default: accounts come from admins or invite links (Django admin → Invites, or
# `manage.py invite`). Open, anyone who reaches the server can register and use every model
# that is not limited to a group.
PARLEY_SIGNUP_OPEN = env.bool("PARLEY_SIGNUP_OPEN", default=False)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- HTTPS --------------------------------------------------------------------------------
# Off for `make run` on loopback, which is plain HTTP. Served over TLS (directly or behind a
# proxy), set PARLEY_HTTPS=1: it turns on each setting below unless that one is set itself,
# and `manage.py check --deploy --fail-level WARNING` then passes. See docs/deployment.md.
PARLEY_HTTPS = env.bool("PARLEY_HTTPS", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=PARLEY_HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if PARLEY_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=PARLEY_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=PARLEY_HTTPS)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=PARLEY_HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a proxy that ends TLS: the header it sets to "https" (e.g. X-Forwarded-Proto).
# Only set it when the proxy always sets or overwrites that header: a client could send it.
_TLS_PROXY_HEADER = env.str("SECURE_PROXY_SSL_HEADER", default="")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _TLS_PROXY_HEADER.upper().replace("-", "_"), "https") if _TLS_PROXY_HEADER else None
)

# --- Static files -------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None  # only for `collectstatic` deployments
# Served by the app itself straight from static/ (no collectstatic step, no CDN): the
# chat page and the in-browser engines work from a bare `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Parley -------------------------------------------------------------------------
# Fernet keys for provider keys at rest, newest first; older ones still decrypt (rotation).
PARLEY_ENCRYPTION_KEYS = env.list("PARLEY_ENCRYPTION_KEYS", default=[])
# Deltas gather for this long before a frame goes out (the first one goes at once).
PARLEY_COALESCE_MS = env.int("PARLEY_COALESCE_MS", default=25)
# Partial answers are saved this often while streaming, so a crash loses little.
PARLEY_CHECKPOINT_SECONDS = env.float("PARLEY_CHECKPOINT_SECONDS", default=2.0)
PARLEY_CHECKPOINT_CHARS = env.int("PARLEY_CHECKPOINT_CHARS", default=8000)
PARLEY_MAX_MESSAGE_CHARS = env.int("PARLEY_MAX_MESSAGE_CHARS", default=100_000)
# A socket with more than this many bytes of frames it has not taken off the wire is cut
# (it reconnects and resumes): a browser that stops reading cannot grow server memory.
PARLEY_MAX_UNSENT_BYTES = env.int("PARLEY_MAX_UNSENT_BYTES", default=4 * 1024 * 1024)
# Admission control: above this many answers in flight, new sends are told to retry later.
PARLEY_MAX_ACTIVE_GENERATIONS = env.int("PARLEY_MAX_ACTIVE_GENERATIONS", default=300)
PARLEY_BUSY_RETRY_SECONDS = env.int("PARLEY_BUSY_RETRY_SECONDS", default=5)
# Fair use, per user (0 turns a limit off): answers at once, answers asked per minute, open
# sockets (tabs) per process. Budgets in tokens and money are set in the admin (Budgets).
PARLEY_USER_MAX_ACTIVE_GENERATIONS = env.int("PARLEY_USER_MAX_ACTIVE_GENERATIONS", default=3)
PARLEY_USER_MESSAGES_PER_MINUTE = env.int("PARLEY_USER_MESSAGES_PER_MINUTE", default=30)
PARLEY_USER_MAX_SOCKETS = env.int("PARLEY_USER_MAX_SOCKETS", default=20)
# For the benchmark only (bench/metering.py measures what metering costs): off, chat answers
# write no usage record, so budgets never count them. Never turn it off in a deployment.
PARLEY_METERING = env.bool("PARLEY_METERING", default=True)
# Seconds a process trusts its copy of the model catalogue (see chat/catalog_cache.py):
# admin changes in this process apply at once, changes from other processes within this.
PARLEY_CATALOG_CACHE_SECONDS = env.float("PARLEY_CATALOG_CACHE_SECONDS", default=2.0)
# Several Parley processes behind a load balancer share ownership of running answers, Stop,
# resume and frames through Redis (chat/cluster.py). On by default when REDIS_URL is set.
PARLEY_CLUSTER = env.bool("PARLEY_CLUSTER", default=bool(REDIS_URL))
# This process's name in the cluster (default: pid and a random suffix, new at each start).
PARLEY_WORKER_ID = env.str("PARLEY_WORKER_ID", default="")
# Open sockets are checked this often for sessions that ended (logout, password change,
# deactivation made anywhere); such sockets are closed and the page says "signed out".
PARLEY_SESSION_CHECK_SECONDS = env.float("PARLEY_SESSION_CHECK_SECONDS", default=1.0)
# An answer still running after this long is stopped and saved (reason `time_limit`).
PARLEY_MAX_GENERATION_SECONDS = env.float("PARLEY_MAX_GENERATION_SECONDS", default=900)
# Titles: a ChatModel id to write every title, or empty for each conversation's own model.
PARLEY_TITLE_MODEL = env.str("PARLEY_TITLE_MODEL", default="")
PARLEY_TITLE_TIMEOUT = env.float("PARLEY_TITLE_TIMEOUT", default=15.0)
# Off: conversations keep their opening words as title (the test suite turns it off so
# title calls do not take scripted answers meant for the chat).
PARLEY_AUTO_TITLES = env.bool("PARLEY_AUTO_TITLES", default=True)
# Admin defaults for conversations that set none (empty: the model's own default).
PARLEY_DEFAULT_TEMPERATURE = env.float("PARLEY_DEFAULT_TEMPERATURE", default=None)
PARLEY_DEFAULT_MAX_TOKENS = env.int("PARLEY_DEFAULT_MAX_TOKENS", default=None)
# A deleted conversation can be restored for this long, then it is purged for good.
PARLEY_DELETE_UNDO_SECONDS = env.int("PARLEY_DELETE_UNDO_SECONDS", default=600)
PARLEY_IMPORT_MAX_BYTES = env.int("PARLEY_IMPORT_MAX_BYTES", default=5_000_000)
# One limit for an import, whichever way it arrives: Django's own cap on a request body
# (2.5 MB by default) would answer a JSON body between the two with an HTML 400 first.
DATA_UPLOAD_MAX_MEMORY_SIZE = PARLEY_IMPORT_MAX_BYTES + 64 * 1024
# Addresses (CIDR ranges) Parley never connects to, besides link-local and cloud metadata
# addresses, which are always refused (providers/egress.py). Private and loopback stay allowed.
PARLEY_EGRESS_DENY = env.list("PARLEY_EGRESS_DENY", default=[])
# In-browser models whose weights come from outside Parley: the origins (https://huggingface.co,
# ...) the chat page may fetch them from. One list does both jobs: the catalogue offers only
# models on these hosts, and the page's connect-src allows exactly them. Empty: bundled only.
PARLEY_BROWSER_MODEL_HOSTS = env.list("PARLEY_BROWSER_MODEL_HOSTS", default=[])

# --- Attachments (docs/attachments.md) --------------------------------------------------
# Where attached files live: "local" (a folder next to the database, or PARLEY_ATTACHMENTS_DIR)
# or "s3" (any S3-compatible object store, through django-storages: pip install '.[s3]').
# Files are served only through Parley, to their owner; the store is never public.
PARLEY_ATTACHMENTS_STORAGE = env.str("PARLEY_ATTACHMENTS_STORAGE", default="local")
_DB_DIR = Path(DATABASES["default"]["NAME"]).parent if "sqlite" in DATABASES["default"]["ENGINE"] else BASE_DIR
PARLEY_ATTACHMENTS_DIR = env.str("PARLEY_ATTACHMENTS_DIR", default=str(_DB_DIR / "attachments"))
if PARLEY_ATTACHMENTS_STORAGE == "s3":
    _ATTACHMENTS: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("PARLEY_S3_BUCKET"),
            "endpoint_url": env.str("PARLEY_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("PARLEY_S3_REGION", default="") or None,
            "access_key": env.str("PARLEY_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("PARLEY_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("PARLEY_S3_PREFIX", default="attachments"),
            "addressing_style": env.str("PARLEY_S3_ADDRESSING_STYLE", default="") or None,
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
elif PARLEY_ATTACHMENTS_STORAGE == "local":
    # base_url None and no MEDIA_URL route: nothing maps a URL onto this folder.
    _ATTACHMENTS = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PARLEY_ATTACHMENTS_DIR, "base_url": None, "file_permissions_mode": 0o600,
                    "directory_permissions_mode": 0o700},
    }
else:
    raise ImproperlyConfigured('PARLEY_ATTACHMENTS_STORAGE must be "local" or "s3".')
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _ATTACHMENTS,
}
# Limits, all checked before anything is written (chat/limits.py); bytes are as uploaded for one
# file and as stored (images re-encoded) for a message and a user.
PARLEY_ATTACHMENT_MAX_BYTES = env.int("PARLEY_ATTACHMENT_MAX_BYTES", default=10_000_000)
PARLEY_ATTACHMENTS_PER_MESSAGE = env.int("PARLEY_ATTACHMENTS_PER_MESSAGE", default=10)
PARLEY_ATTACHMENT_MESSAGE_BYTES = env.int("PARLEY_ATTACHMENT_MESSAGE_BYTES", default=30_000_000)
PARLEY_ATTACHMENT_USER_BYTES = env.int("PARLEY_ATTACHMENT_USER_BYTES", default=1_000_000_000)
PARLEY_ATTACHMENT_USER_FILES = env.int("PARLEY_ATTACHMENT_USER_FILES", default=5_000)
# Images are kept (and sent) at most this many pixels on their long side: every provider
# shrinks bigger ones anyway, and each turn of a chat sends its images again. 0 keeps them whole.
PARLEY_IMAGE_MAX_EDGE = env.int("PARLEY_IMAGE_MAX_EDGE", default=2048)
# A model without a context window in the catalogue is taken to read this many tokens.
PARLEY_DEFAULT_CONTEXT_TOKENS = env.int("PARLEY_DEFAULT_CONTEXT_TOKENS", default=32_000)
# An export zip (a conversation with its files) may be this large when imported.
PARLEY_IMPORT_MAX_ARCHIVE_BYTES = env.int("PARLEY_IMPORT_MAX_ARCHIVE_BYTES", default=200_000_000)
# Uploads larger than this are spooled to a temporary file while Django reads them.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
