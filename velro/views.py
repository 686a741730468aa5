import posixpath
import re
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils._os import safe_join
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe
from django.views import defaults
from django.views.decorators.http import require_safe
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from velro.api import BaseAPIView
from velro.media import SECURITY_HEADERS, media_headers, sniff_content_type
from velro.media_links import MediaLinkRefused, download_name, media_link_check


class ApiNotFound(BaseAPIView):
    """Catch-all at the end of /api/v1/: an unknown API URL is a JSON 404, also in DEBUG
    (where Django would render its HTML debug page)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound()


# GET /api/v1/: each section of the API with the URL of its entry point and what it is
# for. The OpenAPI schema (and the docs drawn from it) is the full reference.
API_SECTIONS = (
    ("auth", "auth-login", "Sign up, sign in, refresh and sign out (JWT); /auth/v1 speaks Supabase Auth."),
    ("me", "me", "The signed-in person: profile, sessions."),
    ("projects", "project-list", "Folders for a person's generations."),
    ("models", "ai-model-list", "The AI model catalog: what can be generated, at what price in credits."),
    ("generations", "generation-list", "Create, list, cancel and favourite generations; stats."),
    ("credits", "credit-balance", "The balance and the ledger of a person's credits."),
    ("style_stacks", "style-stack-list", "Reusable style recipes: build, share, fork, compose."),
    ("presets", "preset-list", "The built-in style presets."),
    ("billing", "billing-pack-list", "Credit packs and plans, checkout through Stripe, orders."),
    ("health", "health", "Liveness and readiness of the service."),
)


class ApiRoot(BaseAPIView):
    """``GET /api/v1/``: the API's sections with links, for a person finding their way."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="The API's sections, with links",
        description="Where to start: each section's entry point, and the documentation. No authentication.",
        tags=["operations"],
        responses={
            200: inline_serializer(
                name="ApiRoot",
                fields={
                    "name": serializers.CharField(),
                    "version": serializers.CharField(),
                    "docs": serializers.URLField(),
                    "redoc": serializers.URLField(),
                    "schema": serializers.URLField(),
                    "sections": serializers.DictField(
                        child=inline_serializer(
                            name="ApiSection",
                            fields={"url": serializers.URLField(), "description": serializers.CharField()},
                        )
                    ),
                },
            )
        },
    )
    def get(self, request):
        link = request.build_absolute_uri
        return Response(
            {
                "name": "Velro API",
                "version": "v1",
                "docs": link(reverse("docs")),
                "redoc": link(reverse("redoc")),
                "schema": link(reverse("schema")),
                "sections": {
                    name: {"url": link(reverse(url_name)), "description": description}
                    for name, url_name, description in API_SECTIONS
                },
            }
        )


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request.", "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Permission denied.", "code": "permission_denied"}, status=403)
    return defaults.permission_denied(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error.", "code": "server_error"}, status=500)
    return defaults.server_error(request)


@require_safe
@transaction.non_atomic_requests
def media(request, path):
    """Uploads and outputs from MEDIA_ROOT, through signed links only (MEDIA_STORAGE
    local; velro/media_links.py mints them; with s3 this view serves nothing). No signature: 404; a tampered or expired
    one: 403 — checked before the file system is touched.

    Streams the file (Range requests: one range, 206; 416 when unsatisfiable), with
    ETag/Last-Modified and conditional GET (304), ``Cache-Control: private`` for no
    longer than the link lives. Unlike ``django.views.static.serve``, the type comes from
    the file's content (velro/media.py), never its name: images and videos inline,
    anything else an ``application/octet-stream`` attachment, every answer with
    ``nosniff`` and a sandboxing CSP — a stored file never runs as a page of this origin.
    """
    if settings.MEDIA_STORAGE != "local" or "sig" not in request.GET:
        raise Http404("No such file.")  # with s3, links go to the bucket: never proxied
    download = request.GET.get("download") == "1"
    try:
        remaining = media_link_check(
            path, expires=request.GET.get("expires", ""), sig=request.GET["sig"], download=download
        )
    except MediaLinkRefused as exc:
        response = JsonResponse({"detail": exc.message, "code": exc.reason}, status=403)
        return _with_headers(response, {**SECURITY_HEADERS, "Cache-Control": "no-store"})
    fullpath = Path(safe_join(settings.MEDIA_ROOT, posixpath.normpath(path).lstrip("/")))
    if not fullpath.is_file():
        raise Http404("No such file.")
    stat = fullpath.stat()
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    mtime = int(stat.st_mtime)
    common = {
        **SECURITY_HEADERS,
        "Cache-Control": f"private, max-age={remaining}",
        "ETag": etag,
        "Last-Modified": http_date(mtime),
        "Accept-Ranges": "bytes",
    }
    conditional = get_conditional_response(request, etag=etag, last_modified=mtime)
    if conditional is not None:  # 304, or 412 for a failed If-Match/If-Unmodified-Since
        return _with_headers(conditional, common)

    size = stat.st_size
    wanted = _byte_range(request, size, etag, mtime)
    if wanted == "unsatisfiable":
        return HttpResponse(status=416, headers={**common, "Content-Range": f"bytes */{size}"})
    handle = fullpath.open("rb")
    headers = media_headers(sniff_content_type(handle))
    if download:
        headers["Content-Disposition"] = content_disposition_header(True, download_name(path))
    elif "Content-Disposition" not in headers:
        headers["Content-Disposition"] = "inline"
    if wanted is None:
        response = FileResponse(handle, content_type=headers["Content-Type"])
    else:
        start, end = wanted
        handle.seek(start)
        response = FileResponse(_Slice(handle, end - start + 1), content_type=headers["Content-Type"], status=206)
        response.headers["Content-Length"] = str(end - start + 1)
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return _with_headers(response, {**headers, **common})


def _with_headers(response, headers: dict):
    for name, value in headers.items():
        response.headers[name] = value
    return response


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(request, size: int, etag: str, mtime: int):
    """The one byte range asked for, as ``(first, last)``; None to send the whole file
    (no Range, one that is malformed or asks for several ranges, or an If-Range that no
    longer matches: RFC 9110 lets a server ignore those); ``"unsatisfiable"`` for 416."""
    header = request.headers.get("Range")
    if not header or request.method != "GET":
        return None
    if_range = request.headers.get("If-Range")
    if if_range and if_range != etag and parse_http_date_safe(if_range) != mtime:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    first = int(first)
    if last and int(last) < first:
        return None  # not a valid range: ignored
    if first >= size:
        return "unsatisfiable"
    return first, size - 1 if last == "" else min(int(last), size - 1)


class _Slice:
    """``length`` bytes of ``handle`` from its position, read in blocks. No ``fileno``
    on purpose: a WSGI server's sendfile would send the whole rest of the file."""

    def __init__(self, handle, length: int):
        self.handle, self.left = handle, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.handle.read(size)
        self.left -= len(data)
        return data

    def close(self):
        self.handle.close()
