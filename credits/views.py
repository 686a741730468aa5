from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.response import Response

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.serializers import BalanceSerializer, CreditTransactionSerializer
from velro.api import BaseAPIView, BaseGenericViewSet
from velro.openapi import errors
from velro.pagination import CursorPagination


@extend_schema_view(
    list=extend_schema(
        summary="Your credit ledger",
        description="Newest first, cursor pages (`cursor`, `page_size` ≤ 100). Filter with `type`.",
        tags=["credits"],
        responses={200: CreditTransactionSerializer(many=True), **errors(400, 401, 404)},
    )
)
class CreditTransactionViewSet(mixins.ListModelMixin, BaseGenericViewSet):
    """Your credit ledger, newest first (cursor pagination). Read-only, append-only."""

    queryset = CreditTransaction.objects.all()
    serializer_class = CreditTransactionSerializer
    pagination_class = CursorPagination
    filterset_fields = ["type"]


class BalanceView(BaseAPIView):
    """``GET credits/balance``: your balance."""

    @extend_schema(
        summary="Your credit balance",
        tags=["credits"],
        responses={200: BalanceSerializer, **errors(401)},
        examples=[OpenApiExample("balance", value={"credits_balance": 75, "current_plan": "free"}, response_only=True)],
    )
    def get(self, request):
        profile = get_object_or_404(Profile, pk=request.user.pk)
        return Response(BalanceSerializer(profile).data)
