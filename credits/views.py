from django.shortcuts import get_object_or_404
from rest_framework import mixins
from rest_framework.response import Response

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.serializers import BalanceSerializer, CreditTransactionSerializer
from velro.api import BaseAPIView, BaseGenericViewSet
from velro.pagination import CursorPagination


class CreditTransactionViewSet(mixins.ListModelMixin, BaseGenericViewSet):
    """Your credit ledger, newest first (cursor pagination). Read-only, append-only."""

    queryset = CreditTransaction.objects.all()
    serializer_class = CreditTransactionSerializer
    pagination_class = CursorPagination
    filterset_fields = ["type"]


class BalanceView(BaseAPIView):
    """``GET credits/balance``: your balance."""

    def get(self, request):
        profile = get_object_or_404(Profile, pk=request.user.pk)
        return Response(BalanceSerializer(profile).data)
