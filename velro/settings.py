"""Velro settings: one module, everything read from the environment.

The defaults are enough for ``make run`` on a laptop. ``.env.example`` lists every
variable with a line on what it does. Production refuses to start without SECRET_KEY.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from whitenoise.compress import Compressor

from velro import logging as velro_logging

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _env_or_default(cast, name, default):
    """``cast(name)`` (an ``env`` method), an unset or empty variable meaning ``default``."""
    return cast(name) if env.str(name, default="") else default


DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-key-only-for-debug-runs-change-me-0123456789"
elif not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for DEBUG off: use at least 50 random characters, not a 'django-insecure' key "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

# Old keys still accepted when checking signatures (signed media links, sessions), newest
# first: rotate by moving the old SECRET_KEY here for as long as its links should live.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # Staff sign-in (two-factor, limits, idle expiry): before the admin, so its template
    # (admin/base_site.html) and its admin for django-otp's devices come first.
    "staffauth",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    # Two-factor sign-in for staff (staffauth/): TOTP apps and one-time recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    # The background task queue (velro/tasks.py; README, "Background tasks").
    "procrastinate.contrib.django",
    "velro",
    "accounts",
    "credits",
    "projects",
    "generations",
    "stylestacks",
    # Above the domain apps: each reads several of them.
    "billing",
    "health",
    "demo",
    "bench",
    "supabase_import",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything else touches the request (whitenoise docs).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Every request gets an id: on all its log lines and in the X-Request-ID header.
    "velro.middleware.RequestIdMiddleware",
    # A counter and a histogram observation per request, by view and status
    # (velro/metrics.py, served at /metrics): after the static files, which are not views,
    # and before the rest, so its time includes them and their error responses.
    "velro.metrics.RequestMetricsMiddleware",
    # An unreachable database is a 503 (Retry-After), not a 500.
    "velro.middleware.DatabaseUnavailableMiddleware",
    "velro.middleware.CleanQueryMiddleware",
    # Browsers on the front end's origins (CORS_ALLOWED_ORIGINS) may call /api and /auth.
    "corsheaders.middleware.CorsMiddleware",
    # Sessions, the session's user, its second factor (request.user.is_verified(),
    # django-otp) and messages: Django's and django-otp's own, skipped for /api/, whose
    # requests DRF authenticates by bearer token (velro.middleware.BrowserOnlyMixin).
    "velro.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "velro.middleware.AuthenticationMiddleware",
    "velro.middleware.OTPMiddleware",
    "velro.middleware.MessageMiddleware",
    # The admin only: idle staff sessions end, and the two-factor step comes first.
    "staffauth.middleware.StaffSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "velro.urls"
WSGI_APPLICATION = "velro.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -----------------------------------------------------------------------
# With DATABASE_URL, that server is used. Without it, an embedded PostgreSQL (a pip
# wheel) is started under VELRO_DATA_DIR, so a fresh machine needs nothing but Python.
# (An empty value in .env means "the default", for every optional variable.)
VELRO_DATA_DIR = Path(env.str("VELRO_DATA_DIR", default="") or BASE_DIR / ".data").resolve()

if env.str("DATABASE_URL", default=""):
    EMBEDDED_DB = False
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    from velro import embedded_db

    EMBEDDED_DB = True
    DATABASES = {"default": embedded_db.ensure_running(VELRO_DATA_DIR, "velro")}
    embedded_db.add_bin_dir_to_path()

# Server-side parameter binding: psycopg sends parameters apart from the SQL (no quoting
# in Python). Statements are not prepared: Django passes prepare_threshold=None unless
# OPTIONS sets it (so PgBouncer in transaction mode works as it is); make bench's
# baseline runs the same way. DB_SERVER_SIDE_BINDING=0 goes back to client-side binding.
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = _env_or_default(
    env.bool, "DB_SERVER_SIDE_BINDING", True
)

# Django's PostgreSQL backend plus schema-qualified auth.* tables (velro/db_backend).
DATABASES["default"]["ENGINE"] = "velro.db_backend"
# The RLS glue needs every API request inside one transaction (see velro/rls.py).
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# Persistent connections in production (a new PostgreSQL connection costs milliseconds per
# request, make bench); one per request in development. SET LOCAL ends with each request's
# transaction, so a reused connection never carries a role or claims over (velro/rls.py).
DATABASES["default"]["CONN_MAX_AGE"] = _env_or_default(env.int, "CONN_MAX_AGE", 0 if DEBUG else 60)
# With persistent connections, check a reused connection before a request: after a
# database restart the first request of an idle worker would otherwise fail.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Two test runs on one server must not collide on the test database's name.
DATABASES["default"].setdefault("TEST", {})["NAME"] = (
    env.str("TEST_DATABASE_NAME", default="") or f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
)

# Benchmark only (`make bench`): serve API requests WITHOUT the RLS role switch, to
# measure what RLS costs. Refused for any database that is not a benchmark database.
BENCH_DISABLE_ROLE_SWITCH = env.bool("VELRO_BENCH_DISABLE_ROLE_SWITCH", default=False)
if BENCH_DISABLE_ROLE_SWITCH and "_bench_" not in DATABASES["default"]["NAME"]:
    raise ImproperlyConfigured("VELRO_BENCH_DISABLE_ROLE_SWITCH is only for the benchmark's databases.")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Identity -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "full_name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Leaked passwords: Have I Been Pwned's range API, else a bundled list (accounts/passwords.py).
    {"NAME": "accounts.passwords.BreachedPasswordValidator"},
]

# --- Passwords ----------------------------------------------------------------------
# BreachedPasswordValidator asks the k-anonymity range API (only the first 5 hex chars
# of the password's SHA-1 are sent) and refuses a password seen at least THRESHOLD
# times. Off, unreachable, slower than TIMEOUT seconds or answering nonsense: it checks
# the bundled list of breached passwords instead, so sign-up never waits on the API.
PASSWORD_BREACH_CHECK = _env_or_default(env.bool, "PASSWORD_BREACH_CHECK", True)
PASSWORD_BREACH_API_URL = env.str("PASSWORD_BREACH_API_URL", default="") or "https://api.pwnedpasswords.com/range/"
PASSWORD_BREACH_TIMEOUT = _env_or_default(env.float, "PASSWORD_BREACH_TIMEOUT", 2.0)
PASSWORD_BREACH_THRESHOLD = _env_or_default(env.int, "PASSWORD_BREACH_THRESHOLD", 1)

# Credits every new identity receives, with a matching ledger row. The number lives in
# the trigger function public.handle_new_user() (accounts/migrations); this mirrors it
# for documentation and tests.
SIGNUP_BONUS_CREDITS = 100

# --- Rate limits --------------------------------------------------------------------
# login, register and refresh, per client IP and per email (refresh: per user id of the
# token), as DRF throttle rates "N/s|min|hour|day", or "off" (accounts/throttles.py).
# Over a limit: 429 with Retry-After. The counters live in the database cache below, so
# every gunicorn worker and machine shares them.
_RATE_LIMIT_DEFAULTS = {
    "login_ip": "20/min",
    "login_email": "5/min",
    "register_ip": "5/hour",
    "register_email": "5/hour",
    "refresh_ip": "30/min",
    "refresh_user": "10/min",
    # Emails that sign-in flows send (recover, magic link, resend, a change of address),
    # and codes checked (verify): /auth/v1.
    "email_send_ip": "30/hour",
    "email_send_email": "5/hour",
    "verify_ip": "30/min",
    "verify_email": "10/hour",
}


def _rate_limit(scope: str, default: str, name: str = "") -> str | None:
    name = name or f"RATE_LIMIT_{scope.upper()}"
    value = (env.str(name, default="") or default).strip().lower()
    if value == "off":
        return None
    count, _, period = value.partition("/")
    if not (count.isdigit() and period in ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")):
        raise ImproperlyConfigured(f"{name} must look like 5/min, 20/hour or off, not {value!r}.")
    return value


RATE_LIMITS = {scope: _rate_limit(scope, default) for scope, default in _RATE_LIMIT_DEFAULTS.items()}
RATE_LIMITS["invite_user"] = _rate_limit("invite_user", "30/hour")  # POST style-stacks/{id}/contributors

# --- Staff sign-in (the admin; staffauth/, README "Staff sign-in") ------------------
# Failed admin sign-ins (a wrong password or a wrong second-factor code), per account
# (the email typed, lower-cased) and per client IP, "N/s|min|hour|day" or "off". Over
# one: the login page answers 429 "Too many failed sign-ins …". Successful sign-ins
# never count; failures age out of the window.
ADMIN_LOGIN_RATE_ACCOUNT = _rate_limit("admin_login_account", "10/hour", name="ADMIN_LOGIN_RATE_ACCOUNT")
ADMIN_LOGIN_RATE_IP = _rate_limit("admin_login_ip", "40/hour", name="ADMIN_LOGIN_RATE_IP")
# Who must sign in to the admin with a second factor (an authenticator app, or a
# recovery code): "superusers", "staff" (all of them) or "off". Others may opt in.
ADMIN_2FA_REQUIRED = env.str("ADMIN_2FA_REQUIRED", default="") or ("off" if DEBUG else "superusers")
if ADMIN_2FA_REQUIRED not in ("superusers", "staff", "off"):
    raise ImproperlyConfigured(f"ADMIN_2FA_REQUIRED must be superusers, staff or off, not {ADMIN_2FA_REQUIRED!r}.")
# Seconds without a request after which a staff session of the admin ends; 0: never.
ADMIN_SESSION_IDLE_TIMEOUT = _env_or_default(env.int, "ADMIN_SESSION_IDLE_TIMEOUT", 1800)
if ADMIN_SESSION_IDLE_TIMEOUT < 0:
    raise ImproperlyConfigured("ADMIN_SESSION_IDLE_TIMEOUT must be 0 (off) or more seconds.")
# django-otp: the name authenticator apps show; its per-device back-off is replaced by
# the counters above (one limit across the password and code steps, with a message);
# the admin never shows a device's secret (staffauth/admin.py).
OTP_TOTP_ISSUER = "Velro"
OTP_TOTP_THROTTLE_FACTOR = 0
OTP_STATIC_THROTTLE_FACTOR = 0
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

# The client IP is REMOTE_ADDR. Behind N proxies that each append to X-Forwarded-For
# (a load balancer, nginx), set NUM_PROXIES=N; with 0 the header is ignored, as it can
# be forged.
NUM_PROXIES = env.int("NUM_PROXIES", default=0) if env.str("NUM_PROXIES", default="") else 0

# Django's cache: a database table (accounts/migrations/0005_cache_table.py), shared by
# all processes. No API role has a grant on it: use it outside the RLS role switch.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "cache_entries",
        # Expired rows go once the table holds this many; then a third of the rest.
        "OPTIONS": {"MAX_ENTRIES": 50_000, "CULL_FREQUENCY": 3},
    }
}

# --- API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, reading the caller and switching the RLS role in one statement.
        "accounts.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: the browsable API renders forms as the owner after the transaction,
    # which would list other people's objects in related-field choices.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's parsers plus refusing NUL, lone surrogates and absurd nesting (velro/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "velro.parsers.JSONParser",
        "velro.parsers.MultiPartParser",
        "velro.parsers.FormParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["velro.filters.FilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "velro.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "velro.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # The auth views' throttles (settings "Rate limits", accounts/throttles.py).
    "DEFAULT_THROTTLE_RATES": RATE_LIMITS,
    "NUM_PROXIES": NUM_PROXIES,
}

# OpenAPI 3 at /api/v1/schema, Swagger UI at /api/v1/docs, ReDoc at /api/v1/redoc; the
# UI assets come from drf-spectacular-sidecar, so the docs work offline.
SPECTACULAR_SETTINGS = {
    "TITLE": "Velro API",
    "DESCRIPTION": (
        "The API of Velro, an AI image and video generation product: accounts, projects, the AI model "
        "catalog, generations that spend credits, the credit ledger, style stacks and presets. "
        "Authenticate with `Authorization: Bearer <access token>` from `auth/login`. Every error is "
        '`{"detail", "code", "errors"?}`.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "velro.openapi.add_unsupported_media_type",
        # GET generations/events: an async Django view, written into the schema by hand.
        "generations.openapi.add_generation_events",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PresetCategoryEnum": "stylestacks.models.Category",
        "StackCategoryEnum": "stylestacks.models.STACK_CATEGORY_CHOICES",
        "ProjectVisibilityEnum": "projects.models.Project.Visibility",
        "StackVisibilityEnum": "stylestacks.models.StyleStack.Visibility",
        "PlanSlugEnum": "billing.models.PLAN_SLUG_CHOICES",
        "WebhookStatusEnum": "generations.webhooks.WEBHOOK_STATUSES",
    },
}

# --- Access tokens' keys (velro/jwt_keys.py) -------------------------------------------
# ES256 (the default): access tokens are signed with an EC P-256 private key named in
# their header (kid), and the public keys are published at /auth/v1/.well-known/jwks.json,
# so other services verify tokens without a shared secret. HS256: Supabase's legacy mode,
# signed with the JWT secret (JWT_SIGNING_KEY, else SECRET_KEY), nothing published. The
# API keys (anon, service_role) are HS256 with the JWT secret either way.
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="") or "ES256"
if JWT_ALGORITHM not in ("ES256", "HS256"):
    raise ImproperlyConfigured(f"JWT_ALGORITHM must be ES256 or HS256, not {JWT_ALGORITHM!r}.")
# The private keys, inline in JWT_SIGNING_KEYS or in the file JWT_SIGNING_KEYS_FILE: JSON
# (a JWK set {"keys": [...]}, a list of JWKs as GoTrue's GOTRUE_JWT_KEYS, or one JWK;
# `manage.py jwt_signing_key` prints a new one) or PEM (e.g. from `openssl genpkey
# -algorithm EC -pkeyopt ec_paramgen_curve:P-256`; inline, \n stands for a line break).
# The FIRST signs; all verify and are published (public halves). kid: the JWK's own,
# else its RFC 7638 thumbprint. Rotation (README): the new key second (published), then
# first (signing), the old one removed after ACCESS_TOKEN_LIFETIME_MINUTES. Empty with
# DEBUG: a key made once and kept in JWT_DEV_KEYS_FILE, so sessions outlive `make run`
# restarts. Empty in production: system check velro.E030 stops the deploy.
JWT_SIGNING_KEYS = env.str("JWT_SIGNING_KEYS", default="", multiline=True)
if _jwt_keys_file := env.str("JWT_SIGNING_KEYS_FILE", default=""):
    if JWT_SIGNING_KEYS:
        raise ImproperlyConfigured("Set JWT_SIGNING_KEYS or JWT_SIGNING_KEYS_FILE, not both.")
    try:
        JWT_SIGNING_KEYS = Path(_jwt_keys_file).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"JWT_SIGNING_KEYS_FILE {_jwt_keys_file!r} cannot be read: {exc.strerror}.") from exc
JWT_DEV_KEYS_FILE = VELRO_DATA_DIR / "jwt_signing_keys.json" if DEBUG else None

# Access tokens carry Supabase-style claims (sub, role, email, exp, aud) so the same
# claims feed request.jwt.claims and auth.uid() in the database. accounts/tokens.py signs
# and verifies them with the keys above (simplejwt's own backend is not used).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("ACCESS_TOKEN_LIFETIME_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("REFRESH_TOKEN_LIFETIME_DAYS", default=7)),
    "ALGORITHM": JWT_ALGORITHM,
    # The JWT secret: signs the API keys, and the access tokens with HS256.
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUDIENCE": "authenticated",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "AUTH_TOKEN_CLASSES": ("accounts.tokens.AccessToken",),
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.LoginSerializer",
    "USER_AUTHENTICATION_RULE": "accounts.tokens.user_can_authenticate",
}

# --- Generations --------------------------------------------------------------------
# "local": every model renders with the local provider (no network, the default);
# "model": each model runs on its own provider (AIModel.provider, e.g. fal).
GENERATION_PROVIDER = env.str("GENERATION_PROVIDER", default="") or "local"
if GENERATION_PROVIDER not in ("local", "fal", "model"):
    raise ImproperlyConfigured("GENERATION_PROVIDER must be local, fal or model.")
# A generation stuck in "processing" longer than this is failed and refunded by the
# worker's sweep.
GENERATION_PROCESSING_TIMEOUT = env.int("GENERATION_PROCESSING_TIMEOUT", default=600)
# Seconds each process keeps an active catalog model it read for POST generations
# (generations/catalog.py); the admin's edits reach the other processes within this.
# 0: read the row on every request.
AI_MODEL_CACHE_SECONDS = _env_or_default(env.float, "AI_MODEL_CACHE_SECONDS", 10.0)
if AI_MODEL_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("AI_MODEL_CACHE_SECONDS must be 0 or more.")
# fal.ai queue API.
FAL_KEY = env.str("FAL_KEY", default="")
FAL_QUEUE_URL = env.str("FAL_QUEUE_URL", default="") or "https://queue.fal.run"
FAL_TIMEOUT = env.float("FAL_TIMEOUT", default=300.0)
# fal's signed webhooks (generations/fal_webhooks.py): the public keys (a JWKS, fetched
# over HTTPS with a timeout, kept at most FAL_JWKS_CACHE_SECONDS, refetched at most every
# FAL_JWKS_REFRESH_SECONDS when no kept key verifies a delivery).
FAL_JWKS_URL = env.str("FAL_JWKS_URL", default="") or "https://rest.alpha.fal.ai/.well-known/jwks.json"
FAL_JWKS_CACHE_SECONDS = min(env.float("FAL_JWKS_CACHE_SECONDS", default=3600.0), 86400.0)  # fal: never > 24 h
FAL_JWKS_REFRESH_SECONDS = env.float("FAL_JWKS_REFRESH_SECONDS", default=30.0)
FAL_JWKS_TIMEOUT = env.float("FAL_JWKS_TIMEOUT", default=5.0)
# fal's user id of our account (X-Fal-Webhook-User-Id, signed with the rest): when set, a
# delivery signed for another fal account is refused. Empty: not checked.
FAL_WEBHOOK_USER_ID = env.str("FAL_WEBHOOK_USER_ID", default="")
# Where fal reaches this deployment: with it, fal POSTs each result to
# <PUBLIC_BASE_URL>/api/v1/webhooks/fal; empty (development, a private network): the
# worker polls instead.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
# Submit and release (generations/inflight.py): how many provider requests one worker
# keeps in flight, how many provider calls it makes at once, when it polls a request
# (first after GENERATION_POLL_INTERVAL s, backing off to GENERATION_POLL_MAX_INTERVAL;
# with webhooks on, only one not reported within GENERATION_WEBHOOK_GRACE s), and how
# many times a submit failing with a retryable error (connection, 5xx, 429) is tried.
GENERATION_MAX_IN_FLIGHT = env.int("GENERATION_MAX_IN_FLIGHT", default=256)
GENERATION_PROVIDER_CONCURRENCY = env.int("GENERATION_PROVIDER_CONCURRENCY", default=16)
GENERATION_POLL_INTERVAL = env.float("GENERATION_POLL_INTERVAL", default=1.0)
GENERATION_POLL_MAX_INTERVAL = env.float("GENERATION_POLL_MAX_INTERVAL", default=5.0)
GENERATION_WEBHOOK_GRACE = env.float("GENERATION_WEBHOOK_GRACE", default=60.0)
GENERATION_MAX_ATTEMPTS = env.int("GENERATION_MAX_ATTEMPTS", default=3)
if min(GENERATION_MAX_IN_FLIGHT, GENERATION_PROVIDER_CONCURRENCY, GENERATION_MAX_ATTEMPTS) < 1:
    raise ImproperlyConfigured(
        "GENERATION_MAX_IN_FLIGHT, GENERATION_PROVIDER_CONCURRENCY and GENERATION_MAX_ATTEMPTS must be 1 or more."
    )
# Live status, GET generations/events (Server-Sent Events; generations/events.py): served
# by the events process (manage.py run_events, uvicorn). EVENTS_URL: where that process
# is reached when it is not behind the same origin (make run: http://127.0.0.1:8001);
# the WSGI server then redirects the path there, and stream tokens name it. Empty: the
# reverse proxy routes the path to it (README, Deploy). A heartbeat comment every
# EVENTS_HEARTBEAT_SECONDS; stream tokens work for EVENTS_TOKEN_SECONDS; EventSource is
# told to reconnect after EVENTS_RETRY_MILLISECONDS; events are kept for resuming
# (Last-Event-ID) EVENTS_RETENTION_HOURS.
EVENTS_URL = env.str("EVENTS_URL", default="").rstrip("/")
# manage.py run_events: where it listens (make run / make serve: 127.0.0.1:8001), and the
# proxies whose X-Forwarded-* it trusts (gunicorn's variable, the same default).
EVENTS_HOST = env.str("EVENTS_HOST", default="") or "127.0.0.1"
EVENTS_PORT = _env_or_default(env.int, "EVENTS_PORT", 8001)
FORWARDED_ALLOW_IPS = env.str("FORWARDED_ALLOW_IPS", default="") or "127.0.0.1,::1"
EVENTS_HEARTBEAT_SECONDS = _env_or_default(env.float, "EVENTS_HEARTBEAT_SECONDS", 15.0)
EVENTS_TOKEN_SECONDS = _env_or_default(env.int, "EVENTS_TOKEN_SECONDS", 60)
EVENTS_RETRY_MILLISECONDS = _env_or_default(env.int, "EVENTS_RETRY_MILLISECONDS", 3000)
EVENTS_RETENTION_HOURS = _env_or_default(env.int, "EVENTS_RETENTION_HOURS", 24)
if EVENTS_HEARTBEAT_SECONDS <= 0 or min(EVENTS_TOKEN_SECONDS, EVENTS_RETRY_MILLISECONDS, EVENTS_RETENTION_HOURS) < 1:
    raise ImproperlyConfigured(
        "EVENTS_HEARTBEAT_SECONDS must be above 0; EVENTS_TOKEN_SECONDS, EVENTS_RETRY_MILLISECONDS and "
        "EVENTS_RETENTION_HOURS 1 or more."
    )
# Shared secret of provider webhooks (HMAC-SHA256, see generations/webhooks.py).
WEBHOOK_SECRET = env.str("WEBHOOK_SECRET", default="")
WEBHOOK_TOLERANCE = 300  # seconds a signed webhook stays valid

# --- Billing (Stripe; billing/, README "Billing") -----------------------------------
# No secret key: packs and plans are still listed, checkout and the portal answer 503
# billing_not_configured. STRIPE_WEBHOOK_SECRET (whsec_…) verifies Stripe-Signature on
# POST /api/v1/billing/stripe/webhook; without it every delivery is refused.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Where stripe-python sends API calls: Stripe's own by default, a local fake in tests.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="") or "https://api.stripe.com"
STRIPE_WEBHOOK_TOLERANCE = 300  # seconds; stripe-python's own default
STRIPE_MAX_NETWORK_RETRIES = 2  # stripe-python retries idempotent-keyed calls safely
# Where Stripe Checkout sends the person back ({CHECKOUT_SESSION_ID} is filled by Stripe).
BILLING_SUCCESS_URL = (
    env.str("BILLING_SUCCESS_URL", default="")
    or "http://localhost:3000/billing/success?session_id={CHECKOUT_SESSION_ID}"
)
BILLING_CANCEL_URL = env.str("BILLING_CANCEL_URL", default="") or "http://localhost:3000/billing/cancel"
# Where Stripe's billing portal sends the person back.
BILLING_PORTAL_RETURN_URL = env.str("BILLING_PORTAL_RETURN_URL", default="") or BILLING_CANCEL_URL

# Uploaded reference images and generated outputs (Django's storage).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default="") or VELRO_DATA_DIR / "media")
MEDIA_URL = "/media/"
# Where media live (README, "Media"): "local" (MEDIA_ROOT, served by the app itself
# through signed links, velro/media_links.py) or "s3" (a private bucket of any
# S3-compatible store through django-storages; links are presigned by boto3, the app
# never proxies the bytes).
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="") or "local"
if MEDIA_STORAGE not in ("local", "s3"):
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {MEDIA_STORAGE!r}.")
# Seconds a media link the API hands out stays valid (links are minted when a row is read).
MEDIA_URL_TTL = _env_or_default(env.int, "MEDIA_URL_TTL", 3600)
if MEDIA_URL_TTL < 1:
    raise ImproperlyConfigured("MEDIA_URL_TTL must be 1 or more (seconds).")
REFERENCE_IMAGE_MAX_BYTES = 20 * 1024 * 1024
# Most bytes of stored files (outputs, thumbnails, references) a person may have; past it,
# new generations are refused with a 413 until they delete some. 0: no quota.
MEDIA_QUOTA_BYTES = _env_or_default(env.int, "MEDIA_QUOTA_BYTES", 0)
# A provider's output (fal returns URLs on its CDN) is copied into our storage by the
# worker before the generation completes: at most this many bytes, downloaded within
# this many seconds, or the generation fails and is refunded (generations/outputs.py).
MEDIA_MAX_OUTPUT_BYTES = _env_or_default(env.int, "MEDIA_MAX_OUTPUT_BYTES", 200 * 1024 * 1024)
MEDIA_OUTPUT_TIMEOUT = _env_or_default(env.float, "MEDIA_OUTPUT_TIMEOUT", 120.0)
# Most pixels (width × height, summed over frames) an image may have for the app to
# decode it: more is refused as a decompression bomb (velro/media.py; also Pillow's own
# limit in the process). 50 million fits a 48 MP phone photo (~150 MB decoded as RGB).
MAX_IMAGE_PIXELS = _env_or_default(env.int, "MAX_IMAGE_PIXELS", 50_000_000)
if MAX_IMAGE_PIXELS < 1:
    raise ImproperlyConfigured("MAX_IMAGE_PIXELS must be 1 or more.")
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440  # JSON bodies: 2.5 MB
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Background tasks ---------------------------------------------------------------
# procrastinate: jobs live in procrastinate_* tables of this database. Tasks are found in
# each installed app's tasks.py (velro/tasks.py so far); `manage.py procrastinate worker`
# runs them (make run, make worker). The generations table stays the generations' queue.
PROCRASTINATE_WORKER_DEFAULTS = {
    # A finished job is history nobody reads: delete it, or the table grows forever.
    # Failed and cancelled jobs stay, for the admin (Procrastinate → jobs) and a retry.
    "delete_jobs": "successful",
}

# --- Backups (README, "Backups") ------------------------------------------------------
# procrastinate's worker takes a pg_dump daily at BACKUP_HOUR (UTC), prunes old copies and
# verifies the new one by a restore (health/tasks.py). BACKUP_SCHEDULE=off: no schedule
# (`manage.py backup` still works). Copies go to the media bucket's backups/ prefix with
# MEDIA_STORAGE=s3, else to <VELRO_DATA_DIR>/backups/.
BACKUP_SCHEDULE = env.str("BACKUP_SCHEDULE", default="") or "daily"
if BACKUP_SCHEDULE not in ("daily", "off"):
    raise ImproperlyConfigured(f"BACKUP_SCHEDULE must be daily or off, not {BACKUP_SCHEDULE!r}.")
BACKUP_HOUR = _env_or_default(env.int, "BACKUP_HOUR", 3)
if not 0 <= BACKUP_HOUR <= 23:
    raise ImproperlyConfigured("BACKUP_HOUR must be an hour of the day, 0 to 23 (UTC).")
# Without S3: where copies go (default <VELRO_DATA_DIR>/backups; a volume of its own in
# Docker Compose).
BACKUP_DIR = env.str("BACKUP_DIR", default="") or None
# Retention: the newest copy of each of the last BACKUP_KEEP_DAILY days that have one,
# and beyond those the newest of each of BACKUP_KEEP_WEEKLY ISO weeks.
BACKUP_KEEP_DAILY = _env_or_default(env.int, "BACKUP_KEEP_DAILY", 7)
BACKUP_KEEP_WEEKLY = _env_or_default(env.int, "BACKUP_KEEP_WEEKLY", 4)
if BACKUP_KEEP_DAILY < 1 or BACKUP_KEEP_WEEKLY < 0:
    raise ImproperlyConfigured("BACKUP_KEEP_DAILY must be 1 or more and BACKUP_KEEP_WEEKLY 0 or more.")

# Django's default hashers (the first hashes new passwords), and bcrypt for passwords
# carried over from Supabase Auth: verified, then re-hashed with the first at the next
# sign-in (accounts/hashers.py).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "accounts.hashers.GoTrueBcryptPasswordHasher",
]

# --- Browsers and Supabase clients ---------------------------------------------------
# The front end's origins (comma-separated, e.g. https://app.velro.ai): browsers there may
# call /api/v1 and /auth/v1 (django-cors-headers), sending the headers supabase-js sends
# and reading those it reads. Empty: no cross-origin browser calls.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/(api|auth)/v1/.*$"
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-client-info",
    "x-supabase-api-version",
    "apikey",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ("X-Total-Count", "Link", "X-Supabase-Api-Version", "X-Request-ID", "Retry-After")
# The public base URL Supabase clients are given (manage.py supabase_keys), e.g.
# https://api.velro.ai; the clients add /auth/v1 themselves.
SUPABASE_URL = env.str("SUPABASE_URL", default="")
# Access tokens name their issuer as GoTrue's do (<SUPABASE_URL>/auth/v1) once the URL
# is known; verification then checks it.
SIMPLE_JWT["ISSUER"] = f"{SUPABASE_URL.rstrip('/')}/auth/v1" if SUPABASE_URL else None
# Seconds within which a just-rotated refresh token still works (tabs refreshing at
# once; Supabase's default is 10). After it, replaying one ends the session.
AUTH_REFRESH_TOKEN_REUSE_INTERVAL = _env_or_default(env.int, "AUTH_REFRESH_TOKEN_REUSE_INTERVAL", 10)
# Sign-up asks people to confirm their address by email before they can sign in
# (GoTrue's mailer_autoconfirm off). Default: on in production, off with DEBUG (make run).
AUTH_EMAIL_CONFIRM = env.bool("AUTH_EMAIL_CONFIRM", default=not DEBUG)
# Seconds an emailed link or code works (GoTrue's MAILER_OTP_EXP).
MAILER_OTP_EXP = _env_or_default(env.int, "MAILER_OTP_EXP", 3600)
# Where emailed links send people back to: the front end (GoTrue's SITE_URL), and the
# other redirect_to values allowed (URI_ALLOW_LIST: exact URLs or globs such as
# https://*.velro.ai/**). Anything else goes to AUTH_SITE_URL.
AUTH_SITE_URL = env.str("AUTH_SITE_URL", default="http://localhost:3000")
AUTH_REDIRECT_URLS = env.list("AUTH_REDIRECT_URLS", default=[])

# --- Email --------------------------------------------------------------------------
# Django's mail framework, configured by one URL (django-environ): e.g.
# smtp+tls://user:password@smtp.example.com:587 (STARTTLS) or smtp+ssl://…:465; consolemail:// prints
# messages to the log (the default: `make run` needs nothing). Messages are sent by the
# task queue after the transaction that asked for them commits, retried on SMTP failures
# (velro/tasks.py: send_email), never inside a request.
EMAIL_CONFIG = env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://")
EMAIL_BACKEND = EMAIL_CONFIG["EMAIL_BACKEND"]
EMAIL_HOST = EMAIL_CONFIG.get("EMAIL_HOST", "") or "localhost"
EMAIL_PORT = EMAIL_CONFIG.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = EMAIL_CONFIG.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = EMAIL_CONFIG.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(EMAIL_CONFIG.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(EMAIL_CONFIG.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = _env_or_default(env.int, "EMAIL_TIMEOUT", 10)  # seconds an SMTP exchange may take
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="") or "Velro <no-reply@velro.local>"
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- i18n / static ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's target, served by WhiteNoise (the Docker image bakes it in).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default="") or VELRO_DATA_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production: hashed names (cache forever) and pre-compressed files; needs
    # collectstatic. DEBUG (runserver, tests): plain files straight from the apps.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Source maps are fetched only by a browser's developer tools: served uncompressed. Their
# brotli copies were two thirds of collectstatic's time (the API docs' bundles' maps are
# 6 MB), a minute per deploy and per test that collects.
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
# MEDIA_STORAGE=s3: django-storages' own variables (its docs name them) from the
# environment; the rest is fixed here, because a private bucket is the design: objects get
# the bucket's default ACL (private), every URL is presigned for at most the link's life,
# a name is never overwritten, and no custom domain (django-storages would then hand out
# unsigned URLs).
MEDIA_S3_STORAGE = {
    "BACKEND": "velro.s3.PrivateS3Storage",
    "OPTIONS": {
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": MEDIA_URL_TTL,
        "file_overwrite": False,
        "custom_domain": None,
        "signature_version": "s3v4",
    },
}
if MEDIA_STORAGE == "s3":
    AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
    AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None  # R2, MinIO, Supabase …
    AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
    AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None  # else boto3's chain (IAM role …)
    AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
    AWS_S3_ADDRESSING_STYLE = env.str("AWS_S3_ADDRESSING_STYLE", default="") or None  # "path" for most local servers
    STORAGES["default"] = MEDIA_S3_STORAGE
    if MEDIA_URL_TTL > 604_800:
        raise ImproperlyConfigured("With MEDIA_STORAGE=s3, MEDIA_URL_TTL must be at most 604800 (SigV4: 7 days).")

# --- Production security (`manage.py check --deploy`) ----------------------------------


# On by default when DEBUG is off; each can be overridden from the environment.
# Behind a proxy that terminates TLS, set SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
# (only if the proxy always sets that header) so Django knows the request was HTTPS.
SECURE_SSL_REDIRECT = _env_or_default(env.bool, "SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = _env_or_default(env.int, "SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_or_default(env.bool, "SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = _env_or_default(env.bool, "SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = _env_or_default(env.bool, "SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = _env_or_default(env.bool, "CSRF_COOKIE_SECURE", not DEBUG)
_proxy_ssl_header = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https.")
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
# Origins trusted for unsafe requests with a CSRF cookie (the admin), e.g. https://velro.example.com.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Metrics (/metrics for Prometheus; velro/metrics.py, health/prometheus.py) --------
# Who may scrape: a bearer token (Authorization: Bearer <METRICS_TOKEN>, compared in
# constant time) and/or clients whose REMOTE_ADDR is in METRICS_ALLOWED_NETWORKS (CIDRs,
# comma-separated; the direct peer, never X-Forwarded-For: scrape the app directly, not
# through the public proxy). Neither set: 404, except from loopback with DEBUG on.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# Seconds a process keeps the gauges it reads from the database (a burst of scrapes runs
# the SQL once), and the slower ones (the ledger sample, media bytes stored).
METRICS_CACHE_SECONDS = _env_or_default(env.float, "METRICS_CACHE_SECONDS", 10.0)
METRICS_SLOW_CACHE_SECONDS = _env_or_default(env.float, "METRICS_SLOW_CACHE_SECONDS", 300.0)
if METRICS_CACHE_SECONDS < 0 or METRICS_SLOW_CACHE_SECONDS < 0:
    raise ImproperlyConfigured("METRICS_CACHE_SECONDS and METRICS_SLOW_CACHE_SECONDS must be 0 or more.")
if len(METRICS_TOKEN) in range(1, 16):
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 16 characters (or empty: no token).")
try:
    METRICS_ALLOWED_NETWORKS = [str(ipaddress.ip_network(n.strip(), strict=False)) for n in METRICS_ALLOWED_NETWORKS]
except ValueError as exc:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {exc}.") from exc

# --- Logging ------------------------------------------------------------------------
# Every line carries the request id (velro/logging.py). json: one object a line, for log
# collectors (default when DEBUG is off); plain: for humans (default in DEBUG).
LOG_FORMAT = env.str("LOG_FORMAT", default="") or ("plain" if DEBUG else "json")
if LOG_FORMAT not in velro_logging.LOG_FORMATS:
    raise ImproperlyConfigured("LOG_FORMAT must be json or plain.")
LOGGING = velro_logging.build_config(LOG_FORMAT, env.str("LOG_LEVEL", default="") or "INFO")
