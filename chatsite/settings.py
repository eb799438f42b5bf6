"""Parley's one settings module: everything that varies comes from the environment.

Defaults serve a laptop (SQLite in WAL mode, the in-memory channel layer); DATABASE_URL
and REDIS_URL switch to PostgreSQL and Redis. Every variable is documented in
.env.example. Secrets never fall back to a baked-in value outside DEBUG.
"""

from __future__ import annotations

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "chat.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

# --- Channels -----------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth ---------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Admins can close open sign-up; existing accounts keep working.
PARLEY_SIGNUP_OPEN = env.bool("PARLEY_SIGNUP_OPEN", default=True)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

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
# Seconds a process trusts its copy of the model catalogue (see chat/catalog_cache.py):
# admin changes in this process apply at once, changes from other processes within this.
PARLEY_CATALOG_CACHE_SECONDS = env.float("PARLEY_CATALOG_CACHE_SECONDS", default=2.0)
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
# In-browser models whose weights come from outside Parley: the origins (https://huggingface.co,
# ...) the chat page may fetch them from. One list does both jobs: the catalogue offers only
# models on these hosts, and the page's connect-src allows exactly them. Empty: bundled only.
PARLEY_BROWSER_MODEL_HOSTS = env.list("PARLEY_BROWSER_MODEL_HOSTS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
