from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from generations import services
from generations.filters import GenerationFilterSet
from generations.models import AIModel, Generation, GenerationStat
from generations.serializers import (
    AIModelSerializer,
    GenerationCreateInputSerializer,
    GenerationSerializer,
    GenerationStatsSerializer,
)
from velro.api import BaseGenericViewSet, BaseReadOnlyModelViewSet
from velro.openapi import errors
from velro.pagination import CursorPagination
from velro.rows import ValueRows

IDEMPOTENCY_HEADER = "Idempotency-Key"


@extend_schema_view(
    list=extend_schema(
        summary="The AI model catalog",
        description="Active models only; filter with `kind` (image | video). No authentication needed.",
        tags=["models"],
        auth=[],
        responses={200: AIModelSerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        summary="One AI model",
        description="The id is the provider's endpoint path, e.g. `fal-ai/flux/dev`.",
        tags=["models"],
        auth=[],
        responses={200: AIModelSerializer, **errors(404)},
    ),
)
class AIModelViewSet(BaseReadOnlyModelViewSet):
    """The model catalog: active models only, readable by everyone (also signed out)."""

    queryset = AIModel.objects.filter(is_active=True).order_by("sort_order", "id")
    serializer_class = AIModelSerializer
    permission_classes = [AllowAny]
    owner_field = None
    filterset_fields = ["kind"]
    lookup_value_regex = r"[A-Za-z0-9._/-]+"


@extend_schema_view(
    list=extend_schema(
        summary="Your generations",
        description="Newest first, cursor pages (`cursor`, `page_size` ≤ 100).",
        tags=["generations"],
        responses={200: GenerationSerializer(many=True), **errors(400, 401, 404)},
    ),
    retrieve=extend_schema(
        summary="One of your generations",
        description="Poll it to see the status move pending → processing → completed | failed | cancelled.",
        tags=["generations"],
        responses={200: GenerationSerializer, **errors(401, 404)},
    ),
)
class GenerationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseGenericViewSet):
    """Your generations, newest first (cursor pagination)."""

    # The serializer needs ai_model_id only: joining the catalog decoded its JSON schemas
    # once per row (+2.8 ms on a page of 50, measured for the benchmark, make bench).
    queryset = Generation.objects.all()
    serializer_class = GenerationSerializer
    filterset_class = GenerationFilterSet
    pagination_class = CursorPagination

    # A page reads what it shows, as dicts: no model instances, not the provider's
    # bookkeeping nor the style adaptation JSON (make bench; the serializer takes both
    # shapes, and test_hot_paths checks it reads no other column). The values() part is
    # resolved here once, not on every request (~0.1 ms), and the rows are made by
    # velro.rows.ValueRows (JSON decoded without Django's per-value converter loop).
    list_rows = Generation.objects.values(*GenerationSerializer.columns)
    list_rows._iterable_class = ValueRows

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.owned(self.list_rows.all()))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        summary="Create a generation (spends credits)",
        description=(
            "Validates the model, prompt, parameters (against the model's `parameter_schema`) and project, "
            "charges the model's cost and stores the generation as `pending` — all or nothing. JSON, or "
            "multipart with a `reference_image` file. With an `Idempotency-Key` header a retry returns the "
            "first generation (200) and charges once."
        ),
        tags=["generations"],
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False, description="At most 100 characters."
            )
        ],
        request={
            "application/json": GenerationCreateInputSerializer,
            "multipart/form-data": GenerationCreateInputSerializer,
        },
        examples=[
            OpenApiExample(
                "image",
                request_only=True,
                value={
                    "ai_model": "fal-ai/flux/dev",
                    "prompt": "a detective in a rain-soaked alley",
                    "parameters": {"width": 1024, "height": 768, "seed": 7},
                },
            ),
            OpenApiExample(
                "with a preset",
                request_only=True,
                value={"ai_model": "fal-ai/veo3", "prompt": "a man lights a match", "preset": "film-noir-classic"},
            ),
        ],
        responses={
            201: GenerationSerializer,
            200: OpenApiResponse(GenerationSerializer, description="An idempotent retry: the first generation."),
            **errors(400, 401, 402, 422),
        },
    )
    def create(self, request):
        data = GenerationCreateInputSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        key = request.headers.get(IDEMPOTENCY_HEADER, "").strip() or None
        if key is not None and (len(key) > 100 or "\x00" in key):
            return Response(
                {"detail": f"{IDEMPOTENCY_HEADER}: at most 100 characters, no NUL.", "code": "invalid"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        existed = key is not None and Generation.objects.filter(user=request.user, idempotency_key=key).exists()
        generation = services.generation_create(user=request.user, idempotency_key=key, **data.validated_data)
        return Response(
            self.get_serializer(generation).data, status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Cancel a pending generation (refunded)",
        tags=["generations"],
        request=None,
        responses={200: GenerationSerializer, **errors(401, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        generation = self.get_object()
        return Response(
            self.get_serializer(services.generation_cancel(user=request.user, generation_id=generation.pk)).data
        )

    @extend_schema(
        summary="Delete one of your generations, with its files",
        description=(
            "A finished generation (completed, failed or cancelled) only: a pending one is a 409 "
            "(cancel it first, which refunds it), and so is one still processing. Its output files, "
            "thumbnails and reference image are deleted right after, in the background; its links "
            "stop working then. The credit ledger keeps its entries."
        ),
        tags=["generations"],
        responses={204: None, **errors(401, 404, 409)},
    )
    def destroy(self, request, pk=None):
        generation = self.get_object()
        services.generation_delete(user=request.user, generation_id=generation.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["POST"],
        summary="Mark a generation as a favourite",
        tags=["generations"],
        request=None,
        responses={200: GenerationSerializer, **errors(401, 404)},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Unmark a favourite",
        tags=["generations"],
        responses={200: GenerationSerializer, **errors(401, 404)},
    )
    @action(detail=True, methods=["post", "delete"])
    def favorite(self, request, pk=None):
        generation = services.generation_set_favorite(
            generation=self.get_object(), is_favorite=request.method == "POST"
        )
        return Response(self.get_serializer(generation).data)

    @extend_schema(
        summary="Counts and credits by status and model",
        tags=["generations"],
        responses={200: GenerationStatsSerializer, **errors(401)},
        examples=[
            OpenApiExample(
                "stats",
                response_only=True,
                value={
                    "total": 2,
                    "credits_charged": 50,
                    "by_status": {"completed": {"count": 2, "credits_charged": 50}},
                    "by_model": {"fal-ai/flux/dev": {"count": 2, "credits_charged": 50}},
                },
            )
        ],
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def stats(self, request):
        # The caller's rows of the counts the triggers keep (generations 0015), scoped
        # to the owner like every other read of this viewset (and by RLS underneath): a
        # few rows whatever the history, not a scan of every generation.
        rows = (
            self.owned(GenerationStat.objects.filter(count__gt=0))
            .order_by("status", "ai_model_id")
            .values_list("status", "ai_model_id", "count", "credits_charged")
        )
        by_status, by_model, total, credits = {}, {}, 0, 0
        for state, model, count, charged in rows:
            for bucket, key in ((by_status, state), (by_model, model)):
                entry = bucket.setdefault(key, {"count": 0, "credits_charged": 0})
                entry["count"] += count
                entry["credits_charged"] += charged
            total += count
            credits += charged
        body = {"total": total, "credits_charged": credits, "by_status": by_status, "by_model": by_model}
        return Response(GenerationStatsSerializer(body).data)
