"""The report's faces on the web: liveness for load balancers, the full report for staff
(API and admin). The command is ``health/management/commands/dbhealth.py``."""

from __future__ import annotations

import logging

from django.contrib import admin
from django.db import DatabaseError, transaction
from django.http import JsonResponse
from django.template.response import TemplateResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response

from health.render import table
from health.services import UNREACHABLE, health_report, liveness
from velro.api import BaseAPIView
from velro.openapi import errors

HealthSerializer = inline_serializer(
    name="Health",
    fields={
        "status": serializers.CharField(),
        "database": serializers.CharField(),
        "migrations": serializers.CharField(),
    },
)

logger = logging.getLogger(__name__)


class HealthView(BaseAPIView):
    """``GET /api/v1/health``: 200 ``{"status": "ok", "database": "ok", "migrations": "ok"}``,
    or 503 naming the failing part. No authentication, no secrets, no versions; cheap
    enough to call every second (one ``SELECT 1``, the migration check is cached)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @classmethod
    def as_view(cls, **initkwargs):
        # With ATOMIC_REQUESTS Django opens the transaction before the view runs, so an
        # unreachable database would be a 500 from the handler. This view opens its own
        # (the RLS glue still gets one to switch in) and turns that failure into a 503.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def dispatch(self, request, *args, **kwargs):
        try:
            with transaction.atomic():
                return super().dispatch(request, *args, **kwargs)
        except DatabaseError:
            logger.warning("health: the database is unreachable", exc_info=True)
            return JsonResponse(UNREACHABLE, status=503)

    @extend_schema(
        summary="Liveness and readiness",
        description="For load balancers: the database answers and every migration is applied. No authentication.",
        tags=["operations"],
        responses={200: HealthSerializer, 503: HealthSerializer},
        examples=[
            OpenApiExample("healthy", value={"status": "ok", "database": "ok", "migrations": "ok"}, response_only=True),
            OpenApiExample(
                "unapplied migrations",
                value={"status": "unavailable", "database": "ok", "migrations": "pending"},
                response_only=True,
                status_codes=["503"],
            ),
        ],
    )
    def get(self, request):
        healthy, body = liveness()
        return Response(body, status=200 if healthy else 503)


class HealthReportView(BaseAPIView):
    """``GET /api/v1/health/report``: the full report, staff only (``is_staff`` from the
    JWT's identity). The glue has switched this request to ``authenticated``;
    ``health_report()`` runs its queries as the owner and switches back (see
    ``health.services``), after ``IsAdminUser`` has let only staff through."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Full database health report (staff)",
        description="Every check with its level (OK, WARN, ERROR) and details, as `manage.py dbhealth --json`.",
        tags=["operations"],
        responses={
            200: OpenApiResponse(
                response=inline_serializer(
                    name="HealthReport",
                    fields={
                        "level": serializers.CharField(),
                        "generated_at": serializers.DateTimeField(),
                        "checks": serializers.ListField(child=serializers.DictField()),
                    },
                ),
                description="The report.",
            ),
            **errors(401, 403),
        },
    )
    def get(self, request):
        return Response(health_report().as_dict())


def dbhealth_admin_view(request):
    """The admin page "Database health"; wrap it in ``admin.site.admin_view`` (staff only)."""
    report = health_report()
    checks = []
    for check in report.checks:
        columns, rows = table(check.details)
        checks.append({"check": check, "columns": columns, "rows": rows})
    context = {
        **admin.site.each_context(request),
        "title": "Database health",
        "report": report,
        "checks": checks,
    }
    return TemplateResponse(request, "admin/health/dbhealth.html", context)
