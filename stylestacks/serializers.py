from rest_framework import serializers

from generations.models import AIModel
from stylestacks.models import STACK_CATEGORY_CHOICES, StackContributor, StylePreset, StyleStack, StyleStackVersion
from velro.api import CleanJSONField, DirectRowMixin, StrictInputMixin, iso_datetime

SERVER_OWNED = (
    "id",
    "version",
    "usage_count",
    "fork_count",
    "last_used_at",
    "is_featured",
    "is_marketplace",
    "price_credits",
    "parent",
    "created_from",
    "created_from_preset",
    "created_at",
    "updated_at",
    "role",
)


class StyleStackSerializer(StrictInputMixin, serializers.ModelSerializer):
    """A style stack. ``style`` is the style document (GET style-stacks/schema); an
    invalid one is a 400 naming the JSON path. ``role`` is the caller's: owner, editor,
    viewer, or null for someone else's public stack."""

    role = serializers.SerializerMethodField()
    category = serializers.ChoiceField(choices=STACK_CATEGORY_CHOICES, required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), max_length=20, required=False)
    compatible_models = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=50, required=False
    )
    style = CleanJSONField(required=False)

    class Meta:
        model = StyleStack
        fields = [
            "id",
            "name",
            "description",
            "tags",
            "category",
            "visibility",
            "style",
            "compatible_models",
            "version",
            "parent",
            "created_from",
            "created_from_preset",
            "usage_count",
            "fork_count",
            "last_used_at",
            "is_featured",
            "is_marketplace",
            "price_credits",
            "role",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [f for f in SERVER_OWNED if f != "role"]

    def get_role(self, stack) -> str | None:
        request = self.context.get("request")
        if request is None:
            return None
        if stack.user_id == request.user.pk:
            return "owner"
        roles = getattr(stack, "caller_role", None)
        return roles

    def validate_style(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("The style must be a JSON object.")
        return value


class StyleStackListSerializer(DirectRowMixin, StyleStackSerializer):
    """Lists leave the document out (it can be 64 KB); retrieve a stack for it."""

    class Meta(StyleStackSerializer.Meta):
        fields = [f for f in StyleStackSerializer.Meta.fields if f != "style"]

    def to_representation(self, stack):
        """What the declared fields make (tests/stylestacks/test_list_serializer.py compares
        them), built directly: explore and the list serve 50 of these a page, and DRF's
        per-field path was most of explore's time (make bench)."""
        tz = self.current_timezone
        return {
            "id": str(stack.id),
            "name": stack.name,
            "description": stack.description,
            "tags": [str(tag) for tag in stack.tags],
            "category": stack.category,
            "visibility": stack.visibility,
            "compatible_models": [str(model) for model in stack.compatible_models],
            "version": stack.version,
            "parent": stack.parent_id,
            "created_from": stack.created_from,
            "created_from_preset": stack.created_from_preset_id,
            "usage_count": stack.usage_count,
            "fork_count": stack.fork_count,
            "last_used_at": iso_datetime(stack.last_used_at, tz),
            "is_featured": stack.is_featured,
            "is_marketplace": stack.is_marketplace,
            "price_credits": stack.price_credits,
            "role": self.get_role(stack),
            "created_at": iso_datetime(stack.created_at, tz),
            "updated_at": iso_datetime(stack.updated_at, tz),
        }


class ExploreInputSerializer(serializers.Serializer):
    """``GET style-stacks/explore`` query parameters."""

    q = serializers.CharField(max_length=200, required=False, allow_blank=True)
    tags = serializers.CharField(max_length=400, required=False, allow_blank=True, help_text="Comma-separated")
    category = serializers.ChoiceField(choices=STACK_CATEGORY_CHOICES, required=False)
    sort = serializers.ChoiceField(choices=["usage", "forks", "newest"], default="usage")
    page = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    page_size = serializers.IntegerField(min_value=1, max_value=100, default=50)

    def validate_q(self, value):
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        return value.strip()

    def validate_tags(self, value):
        return [tag.strip().lower() for tag in value.split(",") if tag.strip()][:20]


class ExplorePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = StyleStackListSerializer(many=True)


class ForkInputSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)


class FromPresetInputSerializer(StrictInputMixin, serializers.Serializer):
    preset = serializers.SlugRelatedField(slug_field="slug", queryset=StylePreset.objects.filter(is_active=True))
    name = serializers.CharField(max_length=100, required=False)


class ComposeInputSerializer(StrictInputMixin, serializers.Serializer):
    ai_model = serializers.PrimaryKeyRelatedField(queryset=AIModel.objects.filter(is_active=True))
    prompt = serializers.CharField(max_length=10_000)
    negative_prompt = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    parameters = CleanJSONField(required=False, default=dict)

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Parameters must be a JSON object.")
        return value


class ComposeOutputSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    negative_prompt = serializers.CharField(allow_blank=True)
    parameters = serializers.DictField()
    metadata = serializers.DictField()


class StyleStackVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = StyleStackVersion
        fields = ["version", "style", "changed_by", "created_at"]
        read_only_fields = fields


class ContributorSerializer(serializers.ModelSerializer):
    class Meta:
        model = StackContributor
        fields = ["user", "email", "role", "invited_by", "created_at"]
        read_only_fields = fields


class ContributorAddInputSerializer(StrictInputMixin, serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=StackContributor.Role.choices, default=StackContributor.Role.VIEWER)


class InvitationSerializer(serializers.Serializer):
    """The answer to an invite: the same whether or not the address has an account."""

    email = serializers.EmailField(read_only=True, help_text="The invited address, trimmed and lower-cased.")
    role = serializers.ChoiceField(choices=StackContributor.Role.choices, read_only=True)
    status = serializers.ChoiceField(
        choices=["invited"],
        read_only=True,
        help_text="Always `invited`: a registered address is on the stack now, any other one as soon as it "
        "signs up. Which of the two it was is not told.",
    )


class StackPersonSerializer(serializers.Serializer):
    """Someone on a stack: a contributor, or (shown to the owner only) a pending invite
    to an address that has no account yet."""

    user = serializers.UUIDField(read_only=True, allow_null=True, help_text="Null while the invite is pending.")
    email = serializers.EmailField(read_only=True)
    role = serializers.ChoiceField(choices=StackContributor.Role.choices, read_only=True)
    invited_by = serializers.UUIDField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    pending = serializers.BooleanField(
        read_only=True, help_text="An invite waiting for its address to sign up; it then becomes a contributor."
    )
    invite_id = serializers.UUIDField(
        read_only=True,
        allow_null=True,
        help_text="A pending invite's id, to withdraw it (DELETE style-stacks/{id}/invites/{invite_id}); "
        "null for contributors.",
    )


class ContributorRoleInputSerializer(StrictInputMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=StackContributor.Role.choices)


class StylePresetSerializer(serializers.ModelSerializer):
    preview_image_url = serializers.CharField(read_only=True, help_text="A URL, or empty when there is none.")

    class Meta:
        model = StylePreset
        fields = [
            "id",
            "slug",
            "name",
            "category",
            "subcategory",
            "description",
            "creator",
            "style",
            "tags",
            "complexity_level",
            "recommended_models",
            "preview_image_url",
            "is_featured",
            "rating",
            "usage_count",
        ]
        read_only_fields = fields


class StylePresetListSerializer(StylePresetSerializer):
    class Meta(StylePresetSerializer.Meta):
        fields = [f for f in StylePresetSerializer.Meta.fields if f != "style"]
        read_only_fields = fields
