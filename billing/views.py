from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from billing import services
from billing.models import CreditPack, Order, Plan
from billing.serializers import (
    CheckoutInputSerializer,
    CheckoutSerializer,
    CreditPackSerializer,
    OrderSerializer,
    PlanSerializer,
    PortalSerializer,
)
from velro.api import BaseAPIView, BaseGenericViewSet
from velro.openapi import errors
from velro.pagination import CursorPagination


@extend_schema_view(
    list=extend_schema(
        summary="Credit packs for sale",
        tags=["billing"],
        responses={200: CreditPackSerializer(many=True), **errors(503)},
    )
)
class CreditPackViewSet(mixins.ListModelMixin, BaseGenericViewSet):
    """The active credit packs, for everyone (also signed out)."""

    queryset = CreditPack.objects.filter(active=True).order_by("sort_order", "price", "id")
    serializer_class = CreditPackSerializer
    permission_classes = [AllowAny]
    owner_field = None
    pagination_class = None  # a handful of rows


@extend_schema_view(
    list=extend_schema(summary="Plans", tags=["billing"], responses={200: PlanSerializer(many=True), **errors(503)})
)
class PlanViewSet(mixins.ListModelMixin, BaseGenericViewSet):
    """The active plans (free included), for everyone (also signed out)."""

    queryset = Plan.objects.filter(active=True).order_by("sort_order", "monthly_price", "id")
    serializer_class = PlanSerializer
    permission_classes = [AllowAny]
    owner_field = None
    pagination_class = None


@extend_schema_view(
    list=extend_schema(
        summary="Your orders",
        description="Newest first, cursor pages (`cursor`, `page_size` ≤ 100).",
        tags=["billing"],
        responses={200: OrderSerializer(many=True), **errors(400, 401, 404)},
    )
)
class OrderViewSet(mixins.ListModelMixin, BaseGenericViewSet):
    """Your orders and their states."""

    queryset = Order.objects.select_related("pack", "plan")
    serializer_class = OrderSerializer
    pagination_class = CursorPagination
    filterset_fields = ["state", "kind"]


class CheckoutView(BaseAPIView):
    """``POST billing/checkout``: a Stripe Checkout link for a pack or a plan."""

    @extend_schema(
        summary="Buy a credit pack or subscribe to a plan",
        description=(
            "Opens a Stripe Checkout Session and records a `pending` order. Credits arrive when Stripe's "
            "webhook reports the payment, never from the success page. 503 `billing_not_configured` when the "
            "server has no Stripe key."
        ),
        tags=["billing"],
        request=CheckoutInputSerializer,
        responses={201: CheckoutSerializer, **errors(400, 401, 503)},
    )
    def post(self, request):
        data = CheckoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order, url = services.checkout_create(
            user=request.user, pack=data.validated_data.get("pack"), plan=data.validated_data.get("plan")
        )
        order = get_object_or_404(Order.objects.select_related("pack", "plan"), pk=order.pk, user=request.user)
        body = CheckoutSerializer({"url": url, "order": order}).data
        return Response(body, status=status.HTTP_201_CREATED)


class PortalView(BaseAPIView):
    """``POST billing/portal``: a Stripe billing portal link (change or cancel a plan)."""

    @extend_schema(
        summary="Manage your plan in Stripe's billing portal",
        tags=["billing"],
        request=None,
        responses={200: PortalSerializer, **errors(400, 401, 503)},
    )
    def post(self, request):
        return Response(PortalSerializer({"url": services.portal_create(user=request.user)}).data)
