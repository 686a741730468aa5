from django.db.models import Count, Sum
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from generations import services
from generations.filters import GenerationFilterSet
from generations.models import AIModel, Generation
from generations.serializers import (
    AIModelSerializer,
    GenerationCreateInputSerializer,
    GenerationSerializer,
    GenerationStatsSerializer,
)
from velro.api import BaseGenericViewSet, BaseReadOnlyModelViewSet
from velro.pagination import CursorPagination

IDEMPOTENCY_HEADER = "Idempotency-Key"


class AIModelViewSet(BaseReadOnlyModelViewSet):
    """The model catalog: active models only, readable by everyone (also signed out)."""

    queryset = AIModel.objects.filter(is_active=True).order_by("sort_order", "id")
    serializer_class = AIModelSerializer
    permission_classes = [AllowAny]
    owner_field = None
    filterset_fields = ["kind"]
    lookup_value_regex = r"[A-Za-z0-9._/-]+"


class GenerationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseGenericViewSet):
    """Your generations, newest first (cursor pagination)."""

    queryset = Generation.objects.select_related("ai_model")
    serializer_class = GenerationSerializer
    filterset_class = GenerationFilterSet
    pagination_class = CursorPagination

    def create(self, request):
        data = GenerationCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
        if key is not None and len(key) > 100:
            return Response(
                {"detail": f"{IDEMPOTENCY_HEADER} is at most 100 characters.", "code": "invalid"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        existed = key is not None and Generation.objects.filter(user=request.user, idempotency_key=key).exists()
        generation = services.generation_create(user=request.user, idempotency_key=key, **data.validated_data)
        return Response(
            self.get_serializer(generation).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        generation = self.get_object()
        return Response(
            self.get_serializer(services.generation_cancel(user=request.user, generation_id=generation.pk)).data
        )

    @action(detail=True, methods=["post", "delete"])
    def favorite(self, request, pk=None):
        generation = services.generation_set_favorite(
            generation=self.get_object(), is_favorite=request.method == "POST"
        )
        return Response(self.get_serializer(generation).data)

    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def stats(self, request):
        rows = (
            self.get_queryset()
            .order_by()
            .values("status", "ai_model_id")
            .annotate(count=Count("id"), credits=Sum("credits_charged"))
        )
        by_status, by_model, total, credits = {}, {}, 0, 0
        for row in rows:
            for bucket, key in ((by_status, row["status"]), (by_model, row["ai_model_id"])):
                entry = bucket.setdefault(key, {"count": 0, "credits_charged": 0})
                entry["count"] += row["count"]
                entry["credits_charged"] += row["credits"] or 0
            total += row["count"]
            credits += row["credits"] or 0
        body = {"total": total, "credits_charged": credits, "by_status": by_status, "by_model": by_model}
        return Response(GenerationStatsSerializer(body).data)
