"""The benchmark's baseline: ``GET`` and ``POST /api/v1/generations`` without Django or DRF.

A bare WSGI app on one psycopg 3 connection per worker. It does what the real endpoint
does at the database — one transaction per request: switch to the ``authenticated``
role with the caller's JWT claims, select one page of the caller's generations, commit —
and answers with the same JSON, byte for byte, as ``generations.views.GenerationViewSet``
with ``velro.pagination.CursorPagination`` and DRF's ``JSONRenderer``. It is the
practical upper bound for this stack: ``make bench`` serves it next to the Django app
(``gunicorn bench.baseline:application``) and compares the two.

``POST`` does the same for creating a generation: the role switch, then
``public.generation_create`` — the function ``generations.services.generation_create``
calls, which checks the model, prompt and parameters, charges the credits and writes the
ledger — with the same arguments, COMMIT, and the new row as the serializer shows it
(the same JSON as the app's 201 but for the row's own id and times). What the app does
besides — the input serializer's model lookup, filling the parameters' defaults from the
model's schema, the storage quota check when one is set — is its per-request cost.

What it reproduces, because the JSON must match:

* simplejwt's checks on the access token (the signature: ES256 by the key its ``kid``
  names in the app's published JWKS, or HS256 with the shared secret in the legacy
  mode; audience, ``exp``, ``jti``, ``token_type`` "access", ``role`` "authenticated")
  and the claims ``velro.rls.claims_for`` publishes in ``request.jwt.claims``;
* DRF's ``CursorPagination``: the cursor's base64 querystring (``o``/``r``/``p``), the
  position ``str(created_at)``, the offset for rows that share a position, the next and
  previous links built from ``request.build_absolute_uri()`` with
  ``replace_query_param``, the ``page_size`` clamping;
* Django's parsing of the cursor position into a datetime (an unparsable position is
  a 400, like the ``created_at__lt`` filter's ValidationError);
* ``GenerationSerializer``: field order, DRF's datetime format, and the media links:
  signed links (``velro.media_links.signed_media_url``: Django's ``Signer`` HMAC, the
  expiry rounded to a tenth of the TTL) for ``reference_image`` and for outputs stored
  here (``path``, or an older row's ``/media/`` URL), absolute URLs for the rest.

What it leaves out on purpose: the user and session lookup the app does (a deleted or
inactive user's still-valid token, or one of an ended session, is served here, and
``email`` comes from the token, not the database), ALLOWED_HOSTS validation, the filters
(``status=``… is refused with a 400 rather than answered differently), ``Accept: …;
indent=``.

Configuration, read on the first request: ``BASELINE_DATABASE_URL`` (libpq URL or
conninfo), ``BASELINE_JWT_JWKS`` (the public keys, as ``/auth/v1/.well-known/jwks.json``
serves them: tokens are ES256, verified by the key their ``kid`` names), else, with no
keys there, ``BASELINE_JWT_KEY`` (the HS256 secret; falls back to ``JWT_SIGNING_KEY``,
then ``SECRET_KEY``), ``BASELINE_JWT_AUDIENCE`` (default "authenticated"),
``BASELINE_MEDIA_URL`` (default "/media/"), ``BASELINE_SECRET_KEY`` (signs media links;
falls back to ``SECRET_KEY``), ``MEDIA_URL_TTL`` (default 3600), ``BASELINE_PREPARE_THRESHOLD`` (psycopg's
server-side prepared statements; unset means off, as Django runs), and
``SECURE_PROXY_SSL_HEADER`` read like the project's settings.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import posixpath
import re
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

import jwt
import psycopg
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader

PATH = "/api/v1/generations"
ROLE = "authenticated"
DEFAULT_PAGE_SIZE = 50  # REST_FRAMEWORK["PAGE_SIZE"]
MAX_PAGE_SIZE = 100  # velro.pagination.CursorPagination.max_page_size
OFFSET_CUTOFF = 1000  # DRF's CursorPagination.offset_cutoff
MAX_QUERY_FIELDS = 1000  # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS
# GenerationFilterSet's parameters: refused rather than silently ignored.
UNSUPPORTED_PARAMS = ("status", "ai_model", "project", "created_after", "created_before", "is_favorite")

# velro.rls._SWITCH, word for word.
SWITCH = "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"
# Exactly the columns GenerationSerializer shows, in its order. The user filter, the
# keyset condition, the order and LIMIT/OFFSET are those DRF's CursorPagination gives
# the queryset; RLS (generations_select_own) applies underneath as in the app.
_SELECT = (
    'SELECT "id", "ai_model_id", "project_id", "parent_id", "style_stack_id", "preset_id", "prompt", '
    '"adapted_prompt", "negative_prompt", "parameters", "reference_image", "status", "credits_charged", '
    '"outputs", "error_message", "attempts", "is_favorite", "created_at", "started_at", "completed_at", '
    '"progress" FROM "generations" WHERE "user_id" = %s'
)
CREATED_AT = 17  # index of created_at in a row
# POST: the function generations.services.generation_create calls (velro.db.call_row_function),
# with its 13 arguments; the serializer's columns of the row it returns.
CREATE_SQL = (
    _SELECT.split(" FROM ", 1)[0]
    + ' FROM "public"."generation_create"(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
)


def _page_sql(reverse: bool, has_position: bool, has_offset: bool) -> str:
    sql = _SELECT
    if has_position:
        # Forward pages walk created_at downwards; a reverse (previous) cursor upwards.
        sql += ' AND "created_at" > %s' if reverse else ' AND "created_at" < %s'
    if reverse:
        sql += ' ORDER BY "created_at" ASC, "id" ASC LIMIT %s'
    else:
        sql += ' ORDER BY "created_at" DESC, "id" DESC LIMIT %s'
    if has_offset:
        sql += " OFFSET %s"
    return sql


PAGE_SQL = {
    (reverse, has_position, has_offset): _page_sql(reverse, has_position, has_offset)
    for reverse in (False, True)
    for has_position in (False, True)
    for has_offset in (False, True)
}

# django.utils.encoding: iri_to_uri, escape_uri_path, filepath_to_uri.
IRI_SAFE = "/#%[]=:;$&()+,!?*@'~"
URI_PATH_SAFE = "/:@&+$,-_.!~*'()"
FILEPATH_SAFE = "/~!*()'"

# django.utils.dateparse, for the cursor position.
_DATETIME_RE = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})"
    r"[T ](?P<hour>\d{1,2}):(?P<minute>\d{1,2})"
    r"(?::(?P<second>\d{1,2})(?:[.,](?P<microsecond>\d{1,6})\d{0,6})?)?"
    r"\s*(?P<tzinfo>Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_DATE_RE = re.compile(r"(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})$")
_INVALID = "“%s” value has an invalid format. It must be in YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ] format."
_INVALID_DATE = "“%s” value has the correct format (YYYY-MM-DD) but it is an invalid date."
_INVALID_DATETIME = (
    "“%s” value has the correct format (YYYY-MM-DD HH:MM[:ss[.uuuuuu]][TZ]) but it is an invalid date/time."
)

UTC = datetime.UTC
JSON_TYPE = ("Content-Type", "application/json")
NOT_AUTHENTICATED = "Authentication credentials were not provided."
TOKEN_NOT_VALID = "Given token not valid for any token type"


class Reject(Exception):
    """An error answer: ``{"detail", "code", ...}`` with a status line."""

    def __init__(self, status: str, detail: str, code: str, headers: tuple = (), **extra):
        super().__init__(detail)
        self.status = status
        self.body = {"detail": detail, "code": code, **extra}
        self.headers = headers


def _unauthorized(detail: str, code: str) -> Reject:
    return Reject("401 Unauthorized", detail, code, headers=(("WWW-Authenticate", 'Bearer realm="api"'),))


def render(data) -> bytes:
    """DRF's JSONRenderer with the project's settings (compact, UTF-8, strict)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def drf_datetime(value: datetime.datetime | None) -> str | None:
    """DRF's DateTimeField.to_representation in UTC (the connection's time zone)."""
    if not value:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_position(value: str) -> datetime.datetime:
    """What Django makes of ``created_at__lt=<position>``: DateTimeField.to_python, then
    a naive value is taken as UTC. Raises :class:`Reject` (400) where Django raises its
    ValidationError."""
    try:
        parsed = _parse_datetime(value)
    except ValueError:
        raise _invalid(_INVALID_DATETIME % value) from None
    if parsed is None:
        try:
            date = _parse_date(value)
        except ValueError:
            raise _invalid(_INVALID_DATE % value) from None
        if date is None:
            raise _invalid(_INVALID % value)
        parsed = datetime.datetime(date.year, date.month, date.day)
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _invalid(message: str) -> Reject:
    return Reject("400 Bad Request", message, "invalid", errors={"non_field_errors": [message]})


def _parse_datetime(value: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        match = _DATETIME_RE.match(value)
        if match is None:
            return None
        kw = match.groupdict()
        kw["microsecond"] = kw["microsecond"] and kw["microsecond"].ljust(6, "0")
        tzinfo = kw.pop("tzinfo")
        if tzinfo == "Z":
            tzinfo = UTC
        elif tzinfo is not None:
            offset_mins = int(tzinfo[-2:]) if len(tzinfo) > 3 else 0
            offset = 60 * int(tzinfo[1:3]) + offset_mins
            tzinfo = datetime.timezone(datetime.timedelta(minutes=-offset if tzinfo[0] == "-" else offset))
        kw = {k: int(v) for k, v in kw.items() if v is not None}
        return datetime.datetime(**kw, tzinfo=tzinfo)


def _parse_date(value: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        match = _DATE_RE.match(value)
        if match is None:
            return None
        return datetime.date(**{k: int(v) for k, v in match.groupdict().items()})


def decode_cursor(encoded: str) -> tuple[int, bool, str | None]:
    """DRF's CursorPagination.decode_cursor: (offset, reverse, position), or a 404."""
    try:
        querystring = base64.b64decode(encoded.encode("ascii")).decode("ascii")
        tokens = parse_qs(querystring, keep_blank_values=True)
        offset = int(tokens.get("o", ["0"])[0])
        if offset < 0:
            raise ValueError
        offset = min(offset, OFFSET_CUTOFF)
        reverse = bool(int(tokens.get("r", ["0"])[0]))
        position = tokens.get("p", [None])[0]
    except (TypeError, ValueError):
        raise Reject("404 Not Found", "Invalid cursor", "not_found") from None
    return offset, reverse, position


def encode_cursor(offset: int, reverse: bool, position: str | None) -> str:
    tokens = {}
    if offset != 0:
        tokens["o"] = str(offset)
    if reverse:
        tokens["r"] = "1"
    if position is not None:
        tokens["p"] = position
    return base64.b64encode(urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")


def page_size_from(value: str | None) -> int:
    """DRF's get_page_size with ``_positive_int(strict=True, cutoff=100)``."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    try:
        size = int(value)
    except ValueError:
        return DEFAULT_PAGE_SIZE
    if size <= 0:
        return DEFAULT_PAGE_SIZE
    return min(size, MAX_PAGE_SIZE)


class Request:
    """The little of Django's HttpRequest the response needs: scheme and host, the path,
    and ``build_absolute_uri``."""

    __slots__ = ("environ", "scheme_host", "path", "_link_parts")

    def __init__(self, environ: dict, secure_proxy_ssl_header: tuple[str, str] | None):
        self.environ = environ
        self.scheme_host = f"{_scheme(environ, secure_proxy_ssl_header)}://{_host(environ)}"
        script_name = environ.get("SCRIPT_NAME", "").encode("iso-8859-1").decode()
        path_info = environ.get("PATH_INFO", "")
        self.path = script_name.rstrip("/") + "/" + path_info.replace("/", "", 1)
        self._link_parts = None

    def build_absolute_uri(self, location: str) -> str:
        """Django's HttpRequest.build_absolute_uri(location)."""
        bits = urlsplit(location)
        if not (bits.scheme and bits.netloc):
            if (
                bits.path.startswith("/")
                and not bits.scheme
                and not bits.netloc
                and "/./" not in bits.path
                and "/../" not in bits.path
            ):
                location = self.scheme_host + location.removeprefix("//")
            else:
                location = urljoin(self.scheme_host + self.path, location)
        return quote(location, safe=IRI_SAFE)

    def absolute(self, url):
        """generations.serializers.absolute."""
        if not url or url.startswith(("http://", "https://")):
            return url
        return self.build_absolute_uri(url)

    def cursor_link(self, encoded: str) -> str:
        """DRF's replace_query_param(request.build_absolute_uri(), "cursor", encoded)."""
        if self._link_parts is None:
            query_string = self.environ.get("QUERY_STRING", "")
            full_path = quote(self.path, safe=URI_PATH_SAFE)
            if query_string:
                full_path += "?" + quote(query_string, safe=IRI_SAFE)
            scheme, netloc, path, query, fragment = urlsplit(self.build_absolute_uri("//" + full_path))
            self._link_parts = (scheme, netloc, path, fragment, parse_qs(query, keep_blank_values=True))
        scheme, netloc, path, fragment, query_dict = self._link_parts
        query = urlencode(sorted({**query_dict, "cursor": [encoded]}.items()), doseq=True)
        return urlunsplit((scheme, netloc, path, query, fragment))


def _scheme(environ: dict, secure_proxy_ssl_header: tuple[str, str] | None) -> str:
    if secure_proxy_ssl_header:
        header, secure_value = secure_proxy_ssl_header
        value = environ.get(header)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return environ.get("wsgi.url_scheme", "http")


def _host(environ: dict) -> str:
    host = environ.get("HTTP_HOST")
    if host is not None:
        return host
    host = environ["SERVER_NAME"]
    port = str(environ["SERVER_PORT"])
    if port != ("443" if environ.get("wsgi.url_scheme") == "https" else "80"):
        host = f"{host}:{port}"
    return host


def query_params(environ: dict) -> dict[str, str]:
    """Django's request.GET as a dict of last values (what ``QueryDict[key]`` gives)."""
    raw = environ.get("QUERY_STRING", "")
    if not raw:
        return {}
    try:
        raw = raw.encode("iso-8859-1").decode()
    except UnicodeDecodeError:
        pass  # Django falls back to ISO-8859-1, which the WSGI string already is.
    try:
        return dict(parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS))
    except ValueError:
        raise Reject("400 Bad Request", "Too many form fields.", "parse_error") from None


def storage_url(media_url: str, name: str) -> str:
    """FileSystemStorage.url(name)."""
    return urljoin(media_url, quote(name.replace("\\", "/"), safe=FILEPATH_SAFE).lstrip("/"))


MEDIA_LINK_SALT = "velro.media-link"  # velro.media_links.SALT


def media_name_from_url(url, media_url: str, scheme_host: str) -> str | None:
    """velro.media_links.media_name_from_url."""
    if not isinstance(url, str) or "?" in url or "#" in url:
        return None
    if url.startswith(media_url):
        rest = url[len(media_url) :]
    elif url.startswith(("http://", "https://")):
        prefix = scheme_host + media_url
        if not url.startswith(prefix):
            return None
        rest = url[len(prefix) :]
    else:
        return None
    name = posixpath.normpath(unquote(rest))
    if name in (".", "..") or name.startswith(("../", "/")) or "\x00" in name or "\\" in name:
        return None
    return name


class Baseline:
    """The WSGI app. Settings passed here win over the environment (the tests use that)."""

    def __init__(
        self,
        database_url: str | None = None,
        jwt_key: str | None = None,
        jwks: str | None = None,
        audience: str | None = None,
        media_url: str | None = None,
        prepare_threshold: int | None = None,
        secret_key: str | None = None,
    ):
        self._given = {
            "database_url": database_url,
            "jwt_key": jwt_key,
            "jwks": jwks,
            "audience": audience,
            "media_url": media_url,
            "prepare_threshold": prepare_threshold,
            "secret_key": secret_key,
        }
        self._configured = False
        self._local = threading.local()
        self._connections: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    # --- configuration and the connection --------------------------------------------

    def _configure(self) -> None:
        given, env = self._given, os.environ
        self.database_url = given["database_url"] or env.get("BASELINE_DATABASE_URL", "")
        if not self.database_url:
            raise RuntimeError("Set BASELINE_DATABASE_URL (a libpq URL or conninfo string).")
        jwks = json.loads(given["jwks"] or env.get("BASELINE_JWT_JWKS") or '{"keys": []}')
        self.jwt_keys = {key.key_id: key.key for key in jwt.PyJWKSet.from_dict(jwks).keys} if jwks["keys"] else {}
        self.jwt_key = (
            given["jwt_key"] or env.get("BASELINE_JWT_KEY") or env.get("JWT_SIGNING_KEY") or env.get("SECRET_KEY")
        )
        if not self.jwt_keys and not self.jwt_key:
            raise RuntimeError("Set BASELINE_JWT_JWKS (the app's public keys) or BASELINE_JWT_KEY (its HS256 secret).")
        self.audience = given["audience"] or env.get("BASELINE_JWT_AUDIENCE") or "authenticated"
        media_url = given["media_url"] or env.get("BASELINE_MEDIA_URL") or "/media/"
        self.media_url = media_url if media_url.endswith("/") else media_url + "/"
        secret_key = given["secret_key"] or env.get("BASELINE_SECRET_KEY") or env.get("SECRET_KEY")
        if not secret_key:
            raise RuntimeError("Set BASELINE_SECRET_KEY (the app's SECRET_KEY: it signs media links).")
        # salted_hmac's derived key for Signer(salt=MEDIA_LINK_SALT), computed once.
        self.media_link_key = hashlib.sha256((MEDIA_LINK_SALT + "signer" + secret_key).encode()).digest()
        self.media_url_ttl = int(env.get("MEDIA_URL_TTL") or 3600)
        threshold = given["prepare_threshold"]
        if threshold is None and env.get("BASELINE_PREPARE_THRESHOLD", "").strip():
            threshold = int(env["BASELINE_PREPARE_THRESHOLD"])
        self.prepare_threshold = threshold
        header = [part.strip() for part in env.get("SECURE_PROXY_SSL_HEADER", "").split(",") if part.strip()]
        self.secure_proxy_ssl_header = tuple(header) if len(header) == 2 else None
        self._configured = True

    def _cursor(self) -> psycopg.Cursor:
        """This thread's cursor on its own connection (one per process under gunicorn's
        sync workers), opened on first use — after the fork — and again after a failure."""
        local = self._local
        cursor = getattr(local, "cursor", None)
        if cursor is not None and local.pid == os.getpid():
            if not cursor.connection.broken:
                return cursor
            self._drop_connection()
        # (A connection inherited through fork() is left alone: closing it would end the
        # parent's session. self._connections keeps it from being garbage collected.)
        conn = psycopg.connect(self.database_url, autocommit=False, prepare_threshold=self.prepare_threshold)
        # UUIDs as text: PostgreSQL prints them as str(uuid.UUID) does.
        conn.adapters.register_loader("uuid", TextLoader)
        # Datetimes in UTC, as on Django's connection (USE_TZ), so str(created_at), the
        # cursor position, is the same string.
        conn.execute("SELECT set_config('TimeZone', 'UTC', false)")
        conn.commit()
        with self._lock:
            self._connections.append(conn)
        local.pid = os.getpid()
        local.cursor = conn.cursor()
        return local.cursor

    def _drop_connection(self) -> None:
        """Forget this thread's connection after a failure; the next request reconnects."""
        cursor = getattr(self._local, "cursor", None)
        self._local.cursor = None
        if cursor is None:
            return
        with self._lock:
            if cursor.connection in self._connections:
                self._connections.remove(cursor.connection)
        cursor.connection.close()

    def close(self) -> None:
        """Close every connection this app opened (tests; a worker just exits)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._local = threading.local()

    # --- the request --------------------------------------------------------------------

    def __call__(self, environ, start_response):
        queries = 0
        try:
            if not self._configured:
                self._configure()
            if environ.get("PATH_INFO") != PATH:
                raise Reject("404 Not Found", "Not found.", "not_found")
            method = environ.get("REQUEST_METHOD", "")
            if method not in ("GET", "POST"):
                raise Reject(
                    "405 Method Not Allowed",
                    f'Method "{method}" not allowed.',
                    "method_not_allowed",
                    headers=(("Allow", "GET, POST"),),
                )
            claims = self._authenticate(environ)
            if method == "POST":
                body, queries = self._create(environ, claims)
                status, headers = "201 Created", []
            else:
                body, queries = self._list(environ, claims)
                status, headers = "200 OK", []
        except Reject as reject:
            body, status, headers = render(reject.body), reject.status, list(reject.headers)
        except psycopg.OperationalError:
            traceback.print_exc(file=environ.get("wsgi.errors", sys.stderr))
            body = render({"detail": "Database unavailable.", "code": "service_unavailable"})
            status, headers = "503 Service Unavailable", []
        except Exception:
            traceback.print_exc(file=environ.get("wsgi.errors", sys.stderr))
            body, status, headers = render({"detail": "Server error.", "code": "server_error"}), "500 Server Error", []
        headers += [JSON_TYPE, ("Content-Length", str(len(body))), ("X-Query-Count", str(queries))]
        start_response(status, headers)
        return [body]

    def _authenticate(self, environ) -> dict:
        """simplejwt's JWTAuthentication + accounts.tokens.AccessToken, then the claims
        velro.rls.claims_for would publish for that user."""
        header = environ.get("HTTP_AUTHORIZATION")
        parts = header.encode("iso-8859-1").split() if header is not None else ()
        if not parts or parts[0] != b"Bearer":
            raise _unauthorized(NOT_AUTHENTICATED, "not_authenticated")
        if len(parts) != 2:
            raise _unauthorized(
                "Authorization header must contain two space-delimited values", "bad_authorization_header"
            )
        try:
            if self.jwt_keys:  # ES256: only by the key the token names
                key, algorithm = self.jwt_keys.get(jwt.get_unverified_header(parts[1]).get("kid")), "ES256"
                if key is None:
                    raise jwt.InvalidTokenError("no such key")
            else:
                key, algorithm = self.jwt_key, "HS256"
            payload = jwt.decode(
                parts[1],
                key,
                algorithms=[algorithm],
                audience=self.audience,
                options={"verify_aud": True, "verify_signature": True},
            )
        except jwt.InvalidTokenError:
            raise _unauthorized(TOKEN_NOT_VALID, "token_not_valid") from None
        if (
            "exp" not in payload
            or "jti" not in payload
            or payload.get("token_type") != "access"
            or payload.get("role") != ROLE
        ):
            raise _unauthorized(TOKEN_NOT_VALID, "token_not_valid")
        if "sub" not in payload:
            raise _unauthorized("Token contained no recognizable user identification", "token_not_valid")
        try:
            user_id = str(uuid.UUID(payload["sub"]))
        except (TypeError, ValueError, AttributeError):
            raise _unauthorized("User not found", "user_not_found") from None
        claims = {"sub": user_id, "role": ROLE, "email": payload.get("email"), "aud": "authenticated"}
        for key in ("exp", "iat", "jti", "session_id"):
            if key in payload:
                claims[key] = payload[key]
        return claims

    def _list(self, environ, claims: dict) -> tuple[bytes, int]:
        params = query_params(environ)
        for name in UNSUPPORTED_PARAMS:
            if name in params:
                raise Reject("400 Bad Request", f"{name}: filters are not supported by the baseline.", "invalid")
        page_size = page_size_from(params.get("page_size"))
        encoded = params.get("cursor")
        cursor = decode_cursor(encoded) if encoded is not None else None
        offset, reverse, current_position = cursor or (0, False, None)
        sql_params = [claims["sub"]]
        if current_position is not None:
            sql_params.append(parse_position(current_position))
        sql_params.append(page_size + 1)
        if offset:
            sql_params.append(offset)
        sql = PAGE_SQL[reverse, current_position is not None, bool(offset)]

        rows = self._fetch(json.dumps(claims), sql, sql_params)
        page = rows[:page_size]
        previous, following = _paginate(rows, page, page_size, cursor)  # (puts a reverse page in order)
        request = Request(environ, self.secure_proxy_ssl_header)
        body = {
            "next": request.cursor_link(following) if following is not None else None,
            "previous": request.cursor_link(previous) if previous is not None else None,
            "results": [self._item(row, request) for row in page],
        }
        return render(body), 2

    def _create(self, environ, claims: dict) -> tuple[bytes, int]:
        """``POST generations`` (JSON: ai_model, prompt, optional negative_prompt and
        parameters) as one transaction: the RLS switch, ``public.generation_create`` with
        the arguments ``generations.services.generation_create`` passes for such a request,
        COMMIT; the new row as GenerationSerializer shows it. The parameters are taken as
        sent (the app fills the model's defaults first: the benchmark sends them filled)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(length) if length > 0 else b"")
        except (ValueError, KeyError):
            raise Reject("400 Bad Request", "JSON parse error.", "parse_error") from None
        if not isinstance(data, dict) or not isinstance(data.get("ai_model"), str):
            raise Reject("400 Bad Request", "ai_model: a model id is required.", "invalid")
        prompt, negative = data.get("prompt"), data.get("negative_prompt", "")
        parameters = data.get("parameters", {})
        if not isinstance(prompt, str) or not isinstance(negative, str) or not isinstance(parameters, dict):
            raise Reject("400 Bad Request", "prompt, negative_prompt, parameters: wrong types.", "invalid")
        args = [data["ai_model"], prompt, negative, Jsonb(parameters), None, None, "", None, None, None, "",
                Jsonb({}), ""]  # fmt: skip
        try:
            rows = self._fetch(json.dumps(claims), CREATE_SQL, args)
        except psycopg.Error as exc:  # our SQLSTATEs (velro/db.py): the request's fault
            if (exc.sqlstate or "").startswith("VL"):
                raise Reject("400 Bad Request", exc.diag.message_primary or "Invalid.", "invalid") from None
            raise
        return render(self._item(rows[0], Request(environ, self.secure_proxy_ssl_header))), 2

    def _fetch(self, claims: str, sql: str, params: list) -> list[tuple]:
        """One transaction: the RLS switch, the page, COMMIT. A connection found dead
        (the server restarted, an idle timeout) is replaced and the read tried once more."""
        for attempt in (1, 2):
            db = self._cursor()
            try:
                db.execute(SWITCH, (ROLE, claims))
                db.execute(sql, params)
                rows = db.fetchall()
                db.connection.commit()
                return rows
            except psycopg.Error:
                if db.connection.broken:
                    self._drop_connection()
                    if attempt == 1:
                        continue
                else:
                    try:
                        db.connection.rollback()
                    except psycopg.Error:
                        self._drop_connection()
                raise
        raise AssertionError("unreachable")

    def signed_media_url(self, name: str, request: Request) -> str:
        """velro.media_links.signed_media_url(name, request=request)."""
        ttl = self.media_url_ttl
        step = max(1, ttl // 10)
        expires = (int(time.time()) + ttl) // step * step
        digest = hmac.digest(self.media_link_key, f"{name}\n{expires}\n0".encode(), "sha256")
        sig = base64.urlsafe_b64encode(digest).strip(b"=").decode()
        return request.build_absolute_uri(f"{storage_url(self.media_url, name)}?expires={expires}&sig={sig}")

    def _output(self, output: dict, request: Request) -> dict:
        """generations.serializers._output."""
        name = output.get("path")
        if not isinstance(name, str) or not name:
            name = media_name_from_url(output.get("url", ""), self.media_url, request.scheme_host)
        if name is None:
            return {**output, "url": request.absolute(output.get("url", ""))}
        shown = {**output, "url": self.signed_media_url(name, request)}
        shown.pop("path", None)
        shown.pop("thumbnail_size", None)
        thumbnail = shown.pop("thumbnail_path", None)
        shown["thumbnail_url"] = self.signed_media_url(thumbnail, request) if thumbnail else None
        return shown

    def _item(self, row, request: Request) -> dict:
        """GenerationSerializer, field for field."""
        reference = row[10]
        return {
            "id": row[0],
            "ai_model": row[1],
            "project": row[2],
            "parent": row[3],
            "style_stack": row[4],
            "preset": row[5],
            "prompt": row[6],
            "adapted_prompt": row[7],
            "negative_prompt": row[8],
            "parameters": row[9],
            "reference_image": self.signed_media_url(reference, request) if reference else None,
            "status": row[11],
            "credits_charged": row[12],
            "outputs": [self._output(output, request) for output in row[13] or []],
            "error_message": row[14],
            "attempts": row[15],
            "is_favorite": row[16],
            "created_at": drf_datetime(row[17]),
            "started_at": drf_datetime(row[18]),
            "completed_at": drf_datetime(row[19]),
            "progress": row[20],
        }


def _run_of_position(rows, compare) -> tuple[int, object, bool]:
    """DRF's walk in get_next_link / get_previous_link: how many ``rows`` share the
    position ``compare``, the position it stopped at (the last seen if none differed),
    and whether one differed."""
    offset, position = 0, None
    for row in rows:
        position = _position(row)
        if position != compare:
            return offset, position, True
        offset += 1
    return offset, position, False


def _position(row) -> str:
    return str(row[CREATED_AT])


def _paginate(rows: list, page: list, page_size: int, cursor) -> tuple[str | None, str | None]:
    """DRF's CursorPagination after the query: reverses a reverse page in place and
    returns the (previous, next) encoded cursors. A line-by-line port of
    paginate_queryset's tail, get_next_link and get_previous_link."""
    offset, reverse, current_position = cursor or (0, False, None)
    if len(rows) > len(page):
        has_following, following_position = True, _position(rows[-1])
    else:
        has_following, following_position = False, None
    if reverse:
        page.reverse()
        has_next = current_position is not None or offset > 0
        has_previous = has_following
        next_position = current_position if has_next else None
        previous_position = following_position if has_previous else None
    else:
        has_next = has_following
        has_previous = current_position is not None or offset > 0
        next_position = following_position if has_next else None
        previous_position = current_position if has_previous else None

    next_cursor = previous_cursor = None
    if has_next:
        if page and cursor and reverse and offset != 0:
            compare = _position(page[-1])
        else:
            compare = next_position
        link_offset, position, unique = _run_of_position(reversed(page), compare)
        if page and not unique:
            if not has_previous:
                link_offset, position = page_size, None
            elif reverse:
                link_offset, position = 0, previous_position
            else:
                link_offset, position = offset + page_size, previous_position
        if not page:
            position = next_position
        next_cursor = encode_cursor(link_offset, False, position)

    if has_previous:
        if page and cursor and not reverse and offset != 0:
            compare = _position(page[0])
        else:
            compare = previous_position
        link_offset, position, unique = _run_of_position(page, compare)
        if page and not unique:
            if not has_next:
                link_offset, position = page_size, None
            elif reverse:
                link_offset, position = offset + page_size, next_position
            else:
                link_offset, position = 0, next_position
        if not page:
            position = previous_position
        previous_cursor = encode_cursor(link_offset, True, position)

    return previous_cursor, next_cursor


application = Baseline()
