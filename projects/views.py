from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from projects import services
from projects.filters import ProjectFilterSet
from projects.models import Project
from projects.serializers import ProjectSerializer
from velro.api import BaseModelViewSet
from velro.openapi import errors


@extend_schema_view(
    list=extend_schema(
        summary="Your projects",
        description="Filter with `visibility`, `q` (name contains) and `archived`.",
        tags=["projects"],
        responses={200: ProjectSerializer(many=True), **errors(400, 401, 404)},
    ),
    retrieve=extend_schema(
        summary="A project",
        description="Yours, or anyone's public project (read-only).",
        tags=["projects"],
        responses={200: ProjectSerializer, **errors(401, 404)},
    ),
    create=extend_schema(
        summary="Create a project",
        tags=["projects"],
        examples=[
            OpenApiExample("project", request_only=True, value={"name": "Noir shorts", "description": "rainy alleys"})
        ],
        responses={201: ProjectSerializer, **errors(400, 401)},
    ),
    update=extend_schema(
        summary="Replace a project's fields",
        tags=["projects"],
        responses={200: ProjectSerializer, **errors(400, 401, 404)},
    ),
    partial_update=extend_schema(
        summary="Edit a project", tags=["projects"], responses={200: ProjectSerializer, **errors(400, 401, 404)}
    ),
    destroy=extend_schema(
        summary="Delete (or archive) a project",
        description="An empty project is deleted (204); one with generations is archived instead (200).",
        tags=["projects"],
        responses={
            204: OpenApiResponse(description="Deleted."),
            200: OpenApiResponse(ProjectSerializer, description="Archived: it has generations."),
            **errors(401, 404),
        },
    ),
)
class ProjectViewSet(BaseModelViewSet):
    """Your projects. ``DELETE`` removes an empty project (204) and archives one that has
    generations (200 with the archived project); ``POST {id}/restore`` un-archives.
    Public projects of others can be retrieved by id, read-only."""

    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    filterset_class = ProjectFilterSet

    def get_queryset(self):
        if self.action == "retrieve":
            return Project.objects.visible_to(self.request.user)
        return super().get_queryset()

    def perform_create(self, serializer):
        serializer.instance = services.project_create(user=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.project_update(project=serializer.instance, data=serializer.validated_data)

    def destroy(self, request, *args, **kwargs):
        archived = services.project_delete(project=self.get_object())
        if archived is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(self.get_serializer(archived).data)

    @extend_schema(
        summary="Un-archive a project",
        tags=["projects"],
        request=None,
        responses={200: ProjectSerializer, **errors(401, 404)},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        project = services.project_restore(project=self.get_object())
        return Response(self.get_serializer(project).data)
