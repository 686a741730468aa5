from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from projects import services
from projects.filters import ProjectFilterSet
from projects.models import Project
from projects.serializers import ProjectSerializer
from velro.api import BaseModelViewSet


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

    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        project = services.project_restore(project=self.get_object())
        return Response(self.get_serializer(project).data)
