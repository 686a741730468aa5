"""Test-only URLs: the project's API plus views that deliberately forget to filter."""

import json

from django.urls import include, path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts.models import Profile
from credits.models import CreditTransaction
from velro.api import BaseAPIView, BaseReadOnlyModelViewSet


class UnfilteredProfileSerializer(serializers.ModelSerializer):
    class Meta:
        model = Profile
        fields = ["user", "email"]


class UnfilteredProfiles(BaseReadOnlyModelViewSet):
    """A viewset whose queryset forgets the owner filter: RLS must still hold."""

    queryset = Profile.objects.all()
    owner_field = None  # forgets to filter: the point of the test
    serializer_class = UnfilteredProfileSerializer
    pagination_class = None


class WhoAmI(BaseAPIView):
    permission_classes = [AllowAny]

    def get(self, request):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user::text, auth.uid()::text, auth.role()")
            role, uid, claim_role = cursor.fetchone()
        return Response({"role": role, "uid": uid, "claim_role": claim_role})


class Claims(BaseAPIView):
    """The claims the request runs with, and what the glue would have published."""

    def get(self, request):
        from django.db import connection

        from velro.rls import claims_for

        with connection.cursor() as cursor:
            cursor.execute("SELECT auth.jwt()::text")
            (published,) = cursor.fetchone()
        return Response({"published": json.loads(published), "expected": claims_for(request)})


class UnfilteredLedgerCount(BaseAPIView):
    def get(self, request):
        return Response({"rows": CreditTransaction.objects.count()})


class FailsAfterWriting(BaseAPIView):
    """Writes, then raises a handled API error: the write must be rolled back."""

    def post(self, request):
        from rest_framework.exceptions import ValidationError

        Profile.objects.filter(pk=request.user.pk).update(full_name="half-written")
        raise ValidationError({"full_name": ["nope"]})


# Before the real API: it ends with a catch-all 404.
urlpatterns = [
    path("api/v1/_test/profiles", UnfilteredProfiles.as_view({"get": "list"})),
    path("api/v1/_test/whoami", WhoAmI.as_view()),
    path("api/v1/_test/claims", Claims.as_view()),
    path("api/v1/_test/ledger-count", UnfilteredLedgerCount.as_view()),
    path("api/v1/_test/fails-after-writing", FailsAfterWriting.as_view()),
    path("", include("velro.urls")),
]
