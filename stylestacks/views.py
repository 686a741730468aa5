import uuid

from django.db.models import OuterRef, Subquery
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from accounts.throttles import NamedLimitMixin
from stylestacks import serializers, services
from stylestacks.compose import compose
from stylestacks.filters import StylePresetFilterSet, StyleStackFilterSet
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import STYLE_SCHEMA
from stylestacks.selectors import stack_people, stylestacks_explore
from stylestacks.throttles import InviteUserThrottle
from velro.api import BaseGenericViewSet, BaseReadOnlyModelViewSet
from velro.openapi import errors

STACK_EXAMPLE = OpenApiExample(
    "film noir",
    request_only=True,
    value={
        "name": "Film noir",
        "tags": ["noir", "rain"],
        "category": "genre",
        "visibility": "private",
        "style": {
            "schema_version": 2,
            "base_json": {"genre": "film_noir", "lighting": "high_contrast"},
            "prompt_blocks": {
                "description": {"text": "detective waits in a rain-soaked alley"},
                "style": {"text": "high-contrast black and white", "weight": 1.3},
                "lighting": {"text": "venetian-blind shadows"},
                "motion": {"text": "slow push-in"},
                "keywords": {"items": ["noir", "shadows"]},
            },
            "model_adaptations": {"fal-ai/veo3": {"prompt_blocks": {"motion": {"text": "slow dolly through rain"}}}},
        },
    },
)


def _uuid_or_404(value: str, message: str) -> uuid.UUID:
    """A path id as a UUID; anything else (the route lets through e.g. 36 dashes) is a 404."""
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Http404(message) from exc


@extend_schema_view(
    list=extend_schema(
        summary="Your style stacks and those shared with you",
        tags=["style stacks"],
        responses={200: serializers.StyleStackListSerializer(many=True), **errors(400, 401, 404)},
    ),
    retrieve=extend_schema(
        summary="A style stack with its document",
        description="Yours, shared with you, or anyone's public or unlisted stack.",
        tags=["style stacks"],
        responses={200: serializers.StyleStackSerializer, **errors(401, 404)},
    ),
    create=extend_schema(
        summary="Create a style stack",
        description=(
            "The `style` document is validated against `style-stacks/schema` (old-shape documents are upgraded)."
        ),
        tags=["style stacks"],
        examples=[STACK_EXAMPLE],
        responses={201: serializers.StyleStackSerializer, **errors(400, 401)},
    ),
    update=extend_schema(
        summary="Replace a style stack's editable fields",
        tags=["style stacks"],
        responses={200: serializers.StyleStackSerializer, **errors(400, 401, 403, 404)},
    ),
    partial_update=extend_schema(
        summary="Edit a style stack",
        description="Owners change everything editable; editors the style and text, not the visibility.",
        tags=["style stacks"],
        examples=[STACK_EXAMPLE],
        responses={200: serializers.StyleStackSerializer, **errors(400, 401, 403, 404)},
    ),
    destroy=extend_schema(
        summary="Delete your style stack", tags=["style stacks"], responses={204: None, **errors(401, 404)}
    ),
)
class StyleStackViewSet(
    NamedLimitMixin,  # the invite limit's 429 speaks as the auth views' do
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    BaseGenericViewSet,
):
    """Style stacks. The list is your own and those shared with you; ``explore`` lists
    public ones. A stack can be retrieved by anyone signed in when it is public or
    unlisted. Owners edit everything, editors the style and text; only owners delete."""

    queryset = StyleStack.objects.none()  # (for the schema generator; see get_queryset)
    serializer_class = serializers.StyleStackSerializer
    filterset_class = StyleStackFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return StyleStack.objects.none()
        user = self.request.user
        if self.action in ("retrieve", "fork", "compose"):
            queryset = services.stylestacks_visible_to(user)
        elif self.action == "destroy":
            queryset = StyleStack.objects.filter(user=user)
        else:
            queryset = services.stylestacks_of(user)
        role = StackContributor.objects.filter(stack=OuterRef("pk"), user=user).values("role")[:1]
        return queryset.annotate(caller_role=Subquery(role)).order_by("-created_at", "-id")

    def get_serializer_class(self):
        if self.action in ("list", "explore"):
            return serializers.StyleStackListSerializer
        return super().get_serializer_class()

    def perform_create(self, serializer):
        serializer.instance = services.stylestack_create(user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.stylestack_update(
            stack=serializer.instance, user=self.request.user, data=serializer.validated_data
        )

    @extend_schema(
        summary="Explore public style stacks",
        tags=["style stacks"],
        parameters=[serializers.ExploreInputSerializer],
        responses={200: serializers.ExplorePageSerializer, **errors(400, 401)},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def explore(self, request):
        """Public stacks: ``q`` (full-text, websearch syntax), ``tags`` (comma-separated,
        all must match), ``category``, ``sort`` = usage | forks | newest; featured
        first. Paged with ``page`` / ``page_size``."""
        params = serializers.ExploreInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        page, size = values["page"], values["page_size"]
        stacks, total = stylestacks_explore(
            q=values.get("q"),
            tags=values.get("tags"),
            category=values.get("category"),
            sort=values["sort"],
            limit=size,
            offset=(page - 1) * size,
        )
        url = request.build_absolute_uri()
        return Response(
            {
                "count": total,
                "next": replace_query_param(url, "page", page + 1) if page * size < total else None,
                "previous": replace_query_param(url, "page", page - 1) if page > 1 else None,
                "results": serializers.StyleStackListSerializer(
                    stacks, many=True, context=self.get_serializer_context()
                ).data,
            }
        )

    @extend_schema(
        summary="The style document's JSON Schema",
        description="Validate documents client-side the way the server does.",
        tags=["style stacks"],
        auth=[],
        responses={200: OpenApiTypes.OBJECT},
    )
    # Not named "schema": that attribute is the view's OpenAPI schema generator.
    @action(
        detail=False,
        methods=["get"],
        url_path="schema",
        permission_classes=[AllowAny],
        filterset_class=None,
        pagination_class=None,
    )
    def document_schema(self, request):
        """The JSON Schema of the style document, so clients validate the same way."""
        return Response(STYLE_SCHEMA)

    @extend_schema(
        summary="Fork a style stack",
        description="A private copy owned by you; the original's fork_count grows.",
        tags=["style stacks"],
        request=serializers.ForkInputSerializer,
        responses={201: serializers.StyleStackSerializer, **errors(400, 401, 404)},
    )
    @action(detail=True, methods=["post"])
    def fork(self, request, pk=None):
        data = serializers.ForkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stack = services.stylestack_fork(stack=self.get_object(), user=request.user, **data.validated_data)
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        summary="Start a style stack from a preset",
        tags=["style stacks"],
        request=serializers.FromPresetInputSerializer,
        examples=[OpenApiExample("noir", value={"preset": "film-noir-classic", "name": "My noir"}, request_only=True)],
        responses={201: serializers.StyleStackSerializer, **errors(400, 401)},
    )
    @action(detail=False, methods=["post"], url_path="from-preset")
    def from_preset(self, request):
        data = serializers.FromPresetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stack = services.stylestack_from_preset(user=request.user, **data.validated_data)
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data, status=201)

    @extend_schema(
        summary="Preview the prompt a model would receive",
        tags=["style stacks"],
        request=serializers.ComposeInputSerializer,
        examples=[
            OpenApiExample(
                "flux", value={"ai_model": "fal-ai/flux/dev", "prompt": "a man lights a match"}, request_only=True
            )
        ],
        responses={200: serializers.ComposeOutputSerializer, **errors(400, 401, 404)},
    )
    @action(detail=True, methods=["post"])
    def compose(self, request, pk=None):
        """Preview: the prompt, negative prompt and parameters a model would receive."""
        data = serializers.ComposeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = compose(
            self.get_object().style,
            values["ai_model"],
            values["prompt"],
            {"parameters": values["parameters"], "negative_prompt": values["negative_prompt"]},
        )
        body = {
            "prompt": result.prompt,
            "negative_prompt": result.negative_prompt,
            "parameters": result.parameters,
            "metadata": result.metadata,
        }
        return Response(serializers.ComposeOutputSerializer(body).data)

    @extend_schema(
        summary="Previous documents of a style stack",
        tags=["style stacks"],
        responses={200: serializers.StyleStackVersionSerializer(many=True), **errors(401, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def versions(self, request, pk=None):
        versions = StyleStackVersion.objects.filter(stack=self.get_object()).order_by("-version")
        return Response(serializers.StyleStackVersionSerializer(versions, many=True).data)

    @extend_schema(
        summary="Restore a previous document",
        description="The current document is kept as a version too.",
        tags=["style stacks"],
        request=None,
        parameters=[OpenApiParameter("version", int, OpenApiParameter.PATH)],
        responses={200: serializers.StyleStackSerializer, **errors(401, 403, 404)},
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[0-9]{1,9})/restore")
    def restore_version(self, request, pk=None, version=None):
        stack = self.get_object()
        try:
            stack = services.stylestack_restore_version(stack=stack, user=request.user, version=int(version))
        except StyleStackVersion.DoesNotExist as exc:
            raise Http404("No such version.") from exc
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data)

    @extend_schema(
        methods=["GET"],
        summary="People a style stack is shared with",
        description="Its contributors and, for the owner, the invites still waiting for their address to sign up "
        "(`pending`, with the `invite_id` that withdraws one).",
        tags=["style stacks"],
        responses={200: serializers.StackPersonSerializer(many=True), **errors(401, 404)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Share a style stack (owner)",
        description=(
            "Invite someone by email. The answer is the same whether or not the address has an account: a "
            "registered person is on the stack at once, any other address as soon as it signs up (until then "
            "it is listed as pending). Inviting again changes the role. Your own address is a 400. "
            "Rate-limited per person (`RATE_LIMIT_INVITE_USER`, 30 an hour by default): 429 with Retry-After."
        ),
        tags=["style stacks"],
        request=serializers.ContributorAddInputSerializer,
        examples=[OpenApiExample("editor", value={"email": "bob@example.com", "role": "editor"}, request_only=True)],
        responses={202: serializers.InvitationSerializer, **errors(400, 401, 404, 429)},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        pagination_class=None,
        filterset_class=None,
        throttle_classes=[InviteUserThrottle],
    )
    def contributors(self, request, pk=None):
        stack = self.get_object()
        if request.method == "POST":
            data = serializers.ContributorAddInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            invitation = services.contributor_add(stack=stack, user=request.user, **data.validated_data)
            return Response(serializers.InvitationSerializer(invitation).data, status=status.HTTP_202_ACCEPTED)
        people = stack_people(stack=stack, include_pending=stack.user_id == request.user.pk)
        return Response(serializers.StackPersonSerializer(people, many=True).data)

    @extend_schema(
        summary="Withdraw a pending invite (owner)",
        description="The address gets no access when it signs up. Contributors are removed with "
        "DELETE contributors/{user_id}.",
        tags=["style stacks"],
        parameters=[OpenApiParameter("invite_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None, **errors(401, 404)},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"invites/(?P<invite_id>[0-9a-f-]{36})",
        pagination_class=None,
        filterset_class=None,
    )
    def invite(self, request, pk=None, invite_id=None):
        stack = self.get_object()
        invite_id = _uuid_or_404(invite_id, "No such invite.")
        # RLS shows a stack's pending invites to its owner only.
        invite = StackInvite.objects.filter(stack=stack, pk=invite_id).first()
        if invite is None:
            raise Http404("No such invite.")
        invite.stack = stack
        services.invite_withdraw(invite=invite, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["PATCH"],
        summary="Change a contributor's role (owner)",
        tags=["style stacks"],
        request=serializers.ContributorRoleInputSerializer,
        parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: serializers.ContributorSerializer, **errors(400, 401, 403, 404)},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Remove a contributor (owner), or leave a stack",
        tags=["style stacks"],
        parameters=[OpenApiParameter("user_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={204: None, **errors(401, 403, 404)},
    )
    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=r"contributors/(?P<user_id>[0-9a-f-]{36})",
        filterset_class=None,
    )
    def contributor(self, request, pk=None, user_id=None):
        stack = self.get_object()
        user_id = _uuid_or_404(user_id, "No such contributor.")
        contributor = StackContributor.objects.filter(stack=stack, user_id=user_id).first()
        if contributor is None:
            raise Http404("No such contributor.")
        if request.method == "DELETE":
            services.contributor_remove(contributor=contributor, user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = serializers.ContributorRoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contributor = services.contributor_set_role(
            contributor=contributor, user=request.user, role=data.validated_data["role"]
        )
        return Response(serializers.ContributorSerializer(contributor).data)


@extend_schema_view(
    list=extend_schema(
        summary="The preset library",
        tags=["presets"],
        auth=[],
        responses={200: serializers.StylePresetListSerializer(many=True), **errors(400, 404)},
    ),
    retrieve=extend_schema(
        summary="A preset with its style document",
        tags=["presets"],
        auth=[],
        responses={200: serializers.StylePresetSerializer, **errors(404)},
    ),
)
class StylePresetViewSet(BaseReadOnlyModelViewSet):
    """The preset library: active presets, readable by everyone (signed in or not)."""

    queryset = StylePreset.objects.filter(is_active=True).order_by("sort_order", "name")
    serializer_class = serializers.StylePresetSerializer
    filterset_class = StylePresetFilterSet
    permission_classes = [AllowAny]
    owner_field = None
    lookup_field = "slug"

    def get_serializer_class(self):
        return serializers.StylePresetListSerializer if self.action == "list" else super().get_serializer_class()
