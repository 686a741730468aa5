import posixpath
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponseNotModified, JsonResponse
from django.utils._os import safe_join
from django.utils.http import http_date
from django.views import defaults, static
from django.views.decorators.http import require_safe
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny

from velro.api import BaseAPIView
from velro.media import SECURITY_HEADERS, media_headers, sniff_content_type


class ApiNotFound(BaseAPIView):
    """Catch-all at the end of /api/v1/: an unknown API URL is a JSON 404, also in DEBUG
    (where Django would render its HTML debug page)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound()


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
    """Development only (SERVE_MEDIA): uploads and outputs from MEDIA_ROOT.

    Unlike ``django.views.static.serve``, the type comes from the file's content
    (velro/media.py), never its name: images and videos inline, anything else an
    ``application/octet-stream`` attachment, every answer with ``nosniff`` and a
    sandboxing CSP — a stored file never runs as a page of this origin.
    """
    fullpath = Path(safe_join(settings.MEDIA_ROOT, posixpath.normpath(path).lstrip("/")))
    if not fullpath.is_file():
        raise Http404("No such file.")
    mtime = fullpath.stat().st_mtime
    if not static.was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), mtime):
        return HttpResponseNotModified(headers=SECURITY_HEADERS)
    handle = fullpath.open("rb")
    headers = media_headers(sniff_content_type(handle))
    response = FileResponse(handle, content_type=headers["Content-Type"])
    response.headers.pop("Content-Disposition", None)  # FileResponse's "inline; filename=<name on disk>"
    for name, value in {**headers, "Last-Modified": http_date(mtime)}.items():
        response.headers[name] = value
    return response
