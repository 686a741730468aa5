from rest_framework import serializers

from credits.models import CreditTransaction


class CreditTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CreditTransaction
        fields = ["id", "type", "amount", "balance_after", "description", "generation", "created_at"]
        read_only_fields = fields


class BalanceSerializer(serializers.Serializer):
    credits_balance = serializers.IntegerField()
    current_plan = serializers.CharField()
