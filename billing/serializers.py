from rest_framework import serializers

from billing.models import CreditPack, Order, Plan
from velro.api import StrictInputMixin


class CreditPackSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditPack
        fields = ["slug", "name", "credits", "price", "currency"]
        read_only_fields = fields


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["slug", "name", "monthly_price", "currency", "monthly_credits"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    pack = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    plan = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "kind",
            "pack",
            "plan",
            "state",
            "amount",
            "currency",
            "credits",
            "credits_taken_back",
            "created_at",
            "paid_at",
        ]
        read_only_fields = fields


class CheckoutInputSerializer(StrictInputMixin, serializers.Serializer):
    """``{"pack": "<slug>"}`` or ``{"plan": "<slug>"}``: the active catalog only (the
    querysets are read under the caller's role, RLS shows active rows alone)."""

    pack = serializers.SlugRelatedField(
        slug_field="slug", queryset=CreditPack.objects.filter(active=True), required=False
    )
    plan = serializers.SlugRelatedField(slug_field="slug", queryset=Plan.objects.filter(active=True), required=False)

    def validate(self, attrs):
        if bool(attrs.get("pack")) == bool(attrs.get("plan")):
            raise serializers.ValidationError("Give either a pack or a plan.")
        return attrs


class CheckoutSerializer(serializers.Serializer):
    url = serializers.URLField()
    order = OrderSerializer()


class PortalSerializer(serializers.Serializer):
    url = serializers.URLField()
