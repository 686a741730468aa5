"""Production mode, as a deployment runs it: `check --deploy` is clean, weak settings are
refused, static files and logs are production-shaped, and gunicorn really serves the app
(in a subprocess against the test database)."""

import json
import os
import runpy
import secrets
import subprocess
import sys

import pytest

from tests.helpers import ROOT, database_url, get, gunicorn
from velro.jwt_keys import new_private_jwk

STRONG_KEY = secrets.token_urlsafe(48)  # 64 characters
NO_SERVER_URL = "postgres://nobody@127.0.0.1:1/nothing"  # settings only parse it; nothing connects
# Variables of ours that a developer's shell could set and that would change the outcome.
OURS = (
    "SECURE_",
    "SESSION_COOKIE_",
    "CSRF_",
    "LOG_",
    "STATIC_ROOT",
    "GUNICORN_",
    "WEB_CONCURRENCY",
    "EMAIL_",
    "JWT_",
    "PROMETHEUS_MULTIPROC_DIR",
    "METRICS_",
)
MAIL = "smtp+tls://mailer:secret@smtp.example.com:587"
JWT_KEY = json.dumps(new_private_jwk())  # production signs access tokens with its own key


def prod_env(url: str = NO_SERVER_URL, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    return {
        **env,
        "DEBUG": "0",
        "SECRET_KEY": STRONG_KEY,
        "ALLOWED_HOSTS": "example.com",
        "DATABASE_URL": url,
        "EMAIL_URL": MAIL,
        "JWT_SIGNING_KEYS": JWT_KEY,
        **extra,
    }


def python(*args, env: dict, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_check_deploy_is_clean_with_production_settings(db):
    result = python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=prod_env(database_url()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout

    # The same check does fail when a production default is switched off.
    weaker = python(
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=prod_env(database_url(), SECURE_HSTS_SECONDS="0"),
    )
    assert weaker.returncode != 0
    assert "security.W004" in weaker.stdout + weaker.stderr

    # … and when emails would only be printed to the log.
    printed = python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=prod_env(database_url(), EMAIL_URL="")
    )
    assert printed.returncode != 0
    assert "velro.W020" in printed.stdout + printed.stderr and "console.EmailBackend" in printed.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"SECRET_KEY": "too-short-for-production"}, "SECRET_KEY"),
        ({"SECRET_KEY": "django-insecure-" + "x1y2z3" * 10}, "SECRET_KEY"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO"}, "SECURE_PROXY_SSL_HEADER"),
        ({"AI_MODEL_CACHE_SECONDS": "-1"}, "AI_MODEL_CACHE_SECONDS"),
        ({"MEDIA_STORAGE": "gcs"}, "MEDIA_STORAGE must be local or s3"),
        ({"MEDIA_STORAGE": "s3", "MEDIA_URL_TTL": "604801"}, "MEDIA_URL_TTL must be at most 604800"),
        ({"MEDIA_URL_TTL": "0"}, "MEDIA_URL_TTL must be 1 or more"),
        ({"JWT_ALGORITHM": "RS256"}, "JWT_ALGORITHM must be ES256 or HS256"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16 characters"),
        ({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,10.0.0.300/8"}, "METRICS_ALLOWED_NETWORKS"),
        ({"JWT_SIGNING_KEYS_FILE": "/nonexistent/jwt.pem"}, "JWT_SIGNING_KEYS or JWT_SIGNING_KEYS_FILE, not both"),
        ({"JWT_SIGNING_KEYS": "", "JWT_SIGNING_KEYS_FILE": "/nonexistent/jwt.pem"}, "cannot be read"),
    ],
)
def test_bad_production_settings_are_refused(extra, message):
    result = python(
        "-c", "import django; django.setup()", env=prod_env(DJANGO_SETTINGS_MODULE="velro.settings", **extra)
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "static": s.STORAGES["staticfiles"]["BACKEND"],
    "middleware": s.MIDDLEWARE[:3],
    "log_format": s.LOG_FORMAT,
    "console_formatter": s.LOGGING["handlers"]["console"]["formatter"],
    "handler_filters": [h.get("filters", []) for h in s.LOGGING["handlers"].values()],
    "hsts": [s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD],
    "cookies": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],
    "ssl_redirect": s.SECURE_SSL_REDIRECT,
    "proxy_header": s.SECURE_PROXY_SSL_HEADER,
    "csrf_origins": s.CSRF_TRUSTED_ORIGINS,
    "static_root": str(s.STATIC_ROOT),
}))
"""


def production_settings(**extra) -> dict:
    result = python("-c", PRINT_SETTINGS, env=prod_env(DJANGO_SETTINGS_MODULE="velro.settings", **extra))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_are_secure_and_use_whitenoise():
    values = production_settings()
    assert values["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert values["middleware"] == [
        "django.middleware.security.SecurityMiddleware",
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "velro.middleware.RequestIdMiddleware",
    ]
    assert values["log_format"] == values["console_formatter"] == "json"
    assert all("request_id" in filters for filters in values["handler_filters"])
    assert values["hsts"] == [31_536_000, True, True]
    assert values["cookies"] == [True, True]
    assert values["ssl_redirect"] is True
    assert values["proxy_header"] is None and values["csrf_origins"] == []


def test_production_settings_follow_the_environment():
    values = production_settings(
        SECURE_SSL_REDIRECT="0",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_PRELOAD="",  # empty: the default
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        CSRF_TRUSTED_ORIGINS="https://velro.example.com,https://admin.example.com",
        LOG_FORMAT="plain",
        STATIC_ROOT="/srv/velro-static",
    )
    assert values["ssl_redirect"] is False
    assert values["hsts"] == [3600, True, True]
    assert values["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["csrf_origins"] == ["https://velro.example.com", "https://admin.example.com"]
    assert values["log_format"] == "plain"
    assert values["static_root"] == "/srv/velro-static"


def test_debug_settings_keep_plain_static_files_and_logs():
    # Development (DEBUG=1): admin pages render without a collectstatic manifest, logs
    # are plain, no HTTPS redirect or HSTS.
    values = production_settings(DEBUG="1", SECRET_KEY="")
    assert values["static"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert values["log_format"] == "plain"
    assert values["ssl_redirect"] is False and values["hsts"][0] == 0


@pytest.fixture
def gunicorn_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith(OURS) or name in ("HOST", "PORT"):
            monkeypatch.delenv(name)
    # Set by gunicorn.conf.py when missing: recorded as missing, so it is removed after.
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return monkeypatch


def load_gunicorn_config() -> dict:
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_config_reads_the_environment(gunicorn_env):
    gunicorn_env.setenv("HOST", "127.0.0.1")
    gunicorn_env.setenv("PORT", "9123")
    gunicorn_env.setenv("WEB_CONCURRENCY", "3")
    gunicorn_env.setenv("GUNICORN_THREADS", "4")
    gunicorn_env.setenv("GUNICORN_TIMEOUT", "45")
    gunicorn_env.setenv("LOG_FORMAT", "json")
    config = load_gunicorn_config()
    assert config["bind"] == ["127.0.0.1:9123"]
    assert (config["workers"], config["threads"], config["timeout"]) == (3, 4, 45)
    assert config["preload_app"] is False
    assert config["accesslog"] == "-"
    assert config["max_requests"] > 0 and config["max_requests_jitter"] > 0
    assert config["graceful_timeout"] > 0
    assert config["wsgi_app"] == "velro.wsgi:application"
    access = config["logconfig_dict"]["loggers"]["gunicorn.access"]
    assert access["handlers"] == ["console"] and access["propagate"] is False
    assert config["logconfig_dict"]["handlers"]["console"]["formatter"] == "json"


def test_gunicorn_config_defaults(gunicorn_env):
    gunicorn_env.setenv("WEB_CONCURRENCY", "")  # empty: the default, as in .env.example
    gunicorn_env.setenv("DEBUG", "0")
    config = load_gunicorn_config()
    assert config["bind"] == ["0.0.0.0:8000"]
    assert config["workers"] == min(2 * os.cpu_count() + 1, 12)
    assert config["threads"] == 1
    assert config["logconfig_dict"]["handlers"]["console"]["formatter"] == "json"


def test_gunicorn_serves_the_api_and_static_files(db, tmp_path, settings):
    env = prod_env(
        database_url(),
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(tmp_path / "static"),
        MEDIA_ROOT=str(tmp_path / "media"),
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        WEB_CONCURRENCY="1",
    )
    collected = python("manage.py", "collectstatic", "--no-input", "--verbosity", "0", env=env, timeout=120)
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "staticfiles.json").is_file()  # the manifest storage ran
    # Pre-compressed copies for what browsers fetch; none for source maps (settings).
    assert list((tmp_path / "static").rglob("*.js.br")) and list((tmp_path / "static").rglob("*.css.gz"))
    assert list((tmp_path / "static").rglob("*.map")) and not list((tmp_path / "static").rglob("*.map.*"))

    log_path = tmp_path / "gunicorn.log"
    with gunicorn(env, log_path) as port:
        https = {"X-Forwarded-Proto": "https"}  # as a TLS-terminating proxy sends it

        status, headers, body = get(port, "/api/v1/models", {**https, "X-Request-ID": "smoke-test.1"})
        assert status == 200, body[:500]
        assert headers["content-type"] == "application/json"
        assert isinstance(json.loads(body)["results"], list)
        assert headers["x-request-id"] == "smoke-test.1"
        assert "preload" in headers["strict-transport-security"]

        status, headers, body = get(port, "/static/admin/css/base.css", https)
        assert status == 200
        assert headers["content-type"].startswith("text/css")
        assert b"body" in body

        # Media: served by the app with DEBUG off, through signed links only (tests/media).
        from velro.media_links import signed_media_url

        (tmp_path / "media" / "clips").mkdir(parents=True)
        (tmp_path / "media" / "clips" / "a.bin").write_bytes(bytes(range(256)) * 4)
        settings.SECRET_KEY = STRONG_KEY
        link = signed_media_url("clips/a.bin")
        status, headers, body = get(port, link, https)
        assert status == 200 and body == bytes(range(256)) * 4
        assert headers["content-disposition"] == "attachment" and headers["x-content-type-options"] == "nosniff"
        status, headers, body = get(port, link, {**https, "Range": "bytes=1020-"})
        assert (status, headers["content-range"], body) == (206, "bytes 1020-1023/1024", bytes(range(252, 256)))
        assert get(port, "/media/clips/a.bin", https)[0] == 404

        # Plain http is redirected to https.
        status, headers, _ = get(port, "/api/v1/models")
        assert status == 301 and headers["location"].startswith("https://")

    # Every line gunicorn and Django wrote is JSON with a request id; the access line of
    # the API call carries the id it was given.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access" and "/api/v1/models" in line["message"]]
    assert any(line["request_id"] == "smoke-test.1" for line in access)


def test_gunicorn_config_gives_the_workers_a_metrics_folder_and_empties_it(gunicorn_env, tmp_path):
    gunicorn_env.setenv("VELRO_DATA_DIR", str(tmp_path))
    config = load_gunicorn_config()
    folder = tmp_path / "prometheus"
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"old")
    config["on_starting"](None)
    assert folder.is_dir() and not any(folder.iterdir())
    # A folder given by the environment is kept as given.
    gunicorn_env.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "elsewhere"))
    load_gunicorn_config()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "elsewhere")
