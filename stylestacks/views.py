from django.db.models import OuterRef, Subquery
from django.http import Http404
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from stylestacks import serializers, services
from stylestacks.compose import compose
from stylestacks.filters import StylePresetFilterSet, StyleStackFilterSet
from stylestacks.models import StackContributor, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import STYLE_SCHEMA
from stylestacks.selectors import stylestacks_explore
from velro.api import BaseGenericViewSet, BaseReadOnlyModelViewSet


class StyleStackViewSet(
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

    serializer_class = serializers.StyleStackSerializer
    filterset_class = StyleStackFilterSet

    def get_queryset(self):
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

    @action(detail=False, methods=["get"], permission_classes=[AllowAny], filterset_class=None, pagination_class=None)
    def schema(self, request):
        """The JSON Schema of the style document, so clients validate the same way."""
        return Response(STYLE_SCHEMA)

    @action(detail=True, methods=["post"])
    def fork(self, request, pk=None):
        data = serializers.ForkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stack = services.stylestack_fork(stack=self.get_object(), user=request.user, **data.validated_data)
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data, status=201)

    @action(detail=False, methods=["post"], url_path="from-preset")
    def from_preset(self, request):
        data = serializers.FromPresetInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stack = services.stylestack_from_preset(user=request.user, **data.validated_data)
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data, status=201)

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

    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def versions(self, request, pk=None):
        versions = StyleStackVersion.objects.filter(stack=self.get_object()).order_by("-version")
        return Response(serializers.StyleStackVersionSerializer(versions, many=True).data)

    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[0-9]{1,9})/restore")
    def restore_version(self, request, pk=None, version=None):
        stack = self.get_object()
        try:
            stack = services.stylestack_restore_version(stack=stack, user=request.user, version=int(version))
        except StyleStackVersion.DoesNotExist as exc:
            raise Http404("No such version.") from exc
        return Response(serializers.StyleStackSerializer(stack, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def contributors(self, request, pk=None):
        stack = self.get_object()
        if request.method == "POST":
            data = serializers.ContributorAddInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            contributor = services.contributor_add(stack=stack, user=request.user, **data.validated_data)
            return Response(serializers.ContributorSerializer(contributor).data, status=status.HTTP_201_CREATED)
        people = StackContributor.objects.filter(stack=stack).order_by("created_at")
        return Response(serializers.ContributorSerializer(people, many=True).data)

    @action(
        detail=True,
        methods=["patch", "delete"],
        url_path=r"contributors/(?P<user_id>[0-9a-f-]{36})",
        filterset_class=None,
    )
    def contributor(self, request, pk=None, user_id=None):
        stack = self.get_object()
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
