from django.conf import settings
from django.http import JsonResponse
from django.views import defaults, static
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny

from velro.api import BaseAPIView


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


def media(request, path):
    """Development only (SERVE_MEDIA): uploads and outputs from MEDIA_ROOT."""
    return static.serve(request, path, document_root=settings.MEDIA_ROOT)
