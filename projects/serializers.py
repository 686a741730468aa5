from rest_framework import serializers

from projects.models import Project
from velro.api import StrictInputMixin


class ProjectSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A project. The owner writes name, description and visibility; the rest is the
    server's."""

    is_owner = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "visibility",
            "generation_count",
            "is_owner",
            "created_at",
            "updated_at",
            "archived_at",
        ]
        read_only_fields = ["id", "generation_count", "created_at", "updated_at", "archived_at"]
        # The per-owner, case-insensitive uniqueness is checked by the service
        # (full_clean → the projects_user_name_ci_key constraint).
        validators = []

    def get_is_owner(self, project) -> bool:
        request = self.context.get("request")
        return bool(request and project.user_id == request.user.pk)

    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value
