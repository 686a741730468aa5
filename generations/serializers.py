from django.conf import settings
from django.utils.functional import cached_property
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generations import catalog
from generations.models import AIModel, Generation
from projects.models import Project
from stylestacks.models import StylePreset, StyleStack
from stylestacks.services import stylestacks_visible_to
from velro.api import CleanJSONField, DirectRowMixin, SharedQuerysetMixin, StrictInputMixin, iso_datetime
from velro.media_links import LinkMinter, media_name_from_url


class AIModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = AIModel
        fields = [
            "id",
            "display_name",
            "description",
            "kind",
            "provider",
            "credits_cost",
            "max_prompt_length",
            "parameter_schema",
            "prompt_guide",
            "supports_lora",
            "supports_negative_prompt",
            "supports_reference_image",
        ]
        read_only_fields = fields


def absolute(request, url: str) -> str:
    if not url or url.startswith(("http://", "https://")) or request is None:
        return url
    return request.build_absolute_uri(url)


def _outputs(request, outputs, mint=None) -> list[dict]:
    mint = mint or LinkMinter(request)
    return [_output(request, output, mint) for output in outputs or []]


def _output(request, output: dict, mint) -> dict:
    """An output as the API shows it: a file in our storage (``path``, or an older row's
    ``/media/`` URL) gets a signed link minted now (``mint``, a LinkMinter for
    ``request``), and so does its thumbnail (``thumbnail_url``, null for rows older than
    thumbnails); an older row's provider URL is returned as it is (outputs are copied in
    since issue 15)."""
    name = output_media_name(output, request, mint.media_url)
    if name is None:
        return {**output, "url": absolute(request, output.get("url", ""))}
    shown = {**output, "url": mint(name)}
    shown.pop("path", None)
    shown.pop("thumbnail_size", None)
    thumbnail = shown.pop("thumbnail_path", None)
    shown["thumbnail_url"] = mint(thumbnail) if thumbnail else None
    return shown


def output_media_name(output: dict, request=None, media_url: str | None = None) -> str | None:
    """The storage name of an output in our storage: its ``path``, or an older row's
    ``/media/`` URL (``media_url``: MEDIA_URL, when the caller has read it); None for a
    provider's URL."""
    name = output.get("path")
    if isinstance(name, str) and name:
        return name
    return media_name_from_url(output.get("url", ""), request, media_url)


def _reference_url(request, name: str, mint=None) -> str | None:
    """A signed link to the reference image, from its stored name."""
    return (mint or LinkMinter(request))(name) if name else None


class OutputSerializer(serializers.Serializer):
    """One output as the API shows it (documentation: ``_output`` builds it)."""

    url = serializers.URLField(help_text="A link to the file, valid for MEDIA_URL_TTL seconds from this read.")
    thumbnail_url = serializers.URLField(
        allow_null=True,
        help_text="A link to a WebP thumbnail (longest side 512 px; a poster frame for video), as long-lived "
        "as `url`; null for outputs older than thumbnails.",
    )
    mime_type = serializers.CharField(help_text="From the decoded file: image/png, image/jpeg, video/mp4 …")
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size = serializers.IntegerField(required=False, help_text="Bytes.")
    duration = serializers.FloatField(required=False, help_text="Seconds (video).")


class GenerationSerializer(DirectRowMixin, serializers.ModelSerializer):
    """A generation as its owner sees it. Everything is read-only here: creation has its
    own input serializer, and the owner may only change ``is_favorite`` (an action)."""

    outputs = serializers.SerializerMethodField()
    reference_image = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id",
            "ai_model",
            "project",
            "parent",
            "style_stack",
            "preset",
            "prompt",
            "adapted_prompt",
            "negative_prompt",
            "parameters",
            "reference_image",
            "status",
            "credits_charged",
            "outputs",
            "error_message",
            "attempts",
            "is_favorite",
            "created_at",
            "started_at",
            "completed_at",
            # While processing at a provider: its stage (submitting, queued, running,
            # finishing …), queue position, a percentage where the model gives one.
            "progress",
        ]
        read_only_fields = fields

    @extend_schema_field(OutputSerializer(many=True))
    def get_outputs(self, generation) -> list[dict]:
        return _outputs(self.context.get("request"), generation.outputs)

    # The columns to_representation reads (a list page loads only these, as dicts): the
    # fields, with the foreign keys' own columns.
    columns = tuple(
        f"{name}_id" if name in ("ai_model", "project", "parent", "style_stack", "preset") else name
        for name in Meta.fields
    )

    def to_representation(self, generation):
        """The same dict DRF's fields build (tests/generations/test_hot_paths.py compares
        the two on every kind of row), without the per-field machinery: a page of 50 is
        the hottest read of the API. Takes a Generation, or a dict of ``columns`` (a list
        page reads rows as dicts: no model instances)."""
        g = generation if isinstance(generation, dict) else {name: getattr(generation, name) for name in self.columns}
        request, mint = self.request_and_links
        tz = self.current_timezone
        reference = getattr(g["reference_image"], "name", g["reference_image"])  # a FieldFile, or its name
        return {
            "id": str(g["id"]),
            "ai_model": g["ai_model_id"],
            "project": g["project_id"],
            "parent": g["parent_id"],
            "style_stack": g["style_stack_id"],
            "preset": g["preset_id"],
            "prompt": g["prompt"],
            "adapted_prompt": g["adapted_prompt"],
            "negative_prompt": g["negative_prompt"],
            "parameters": g["parameters"],
            "reference_image": _reference_url(request, reference, mint),
            "status": g["status"],
            "credits_charged": g["credits_charged"],
            "outputs": _outputs(request, g["outputs"], mint),
            "error_message": g["error_message"],
            "attempts": g["attempts"],
            "is_favorite": g["is_favorite"],
            "created_at": iso_datetime(g["created_at"], tz),
            "started_at": iso_datetime(g["started_at"], tz),
            "completed_at": iso_datetime(g["completed_at"], tz),
            "progress": g["progress"],
        }

    def get_reference_image(self, generation) -> str | None:
        return _reference_url(self.context.get("request"), generation.reference_image.name)

    @cached_property
    def request_and_links(self):
        """The context's request and a LinkMinter for it, once per serializer: a page's
        rows share one child serializer (``self.context`` walks up to the root on every
        read)."""
        request = self.context.get("request")
        return request, LinkMinter(request)


class ActiveModelField(SharedQuerysetMixin, serializers.PrimaryKeyRelatedField):
    """An active catalog entry by id: PrimaryKeyRelatedField's behaviour and messages, read
    through the process's copy of the catalog (generations.catalog) instead of a query on
    every POST generations (make bench). The declared queryset documents it for the schema."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, str | int):
            self.fail("incorrect_type", data_type=type(data).__name__)
        model = catalog.active_model(str(data))
        if model is None:
            self.fail("does_not_exist", pk_value=data)
        return model


class NoBlankRelatedMixin:
    """DRF turns ``""`` into null for related fields, so ``"project": ""`` used to create
    a generation without a project (and charge for it). Blank is a 400 on the field;
    null, or leaving the field out, means none."""

    default_error_messages = {"blank": "This field may not be blank; send null or leave it out for none."}

    def run_validation(self, data=serializers.empty):
        if isinstance(data, str) and not data.strip():
            self.fail("blank")
        return super().run_validation(data)


class CallerScopedPrimaryKeyField(NoBlankRelatedMixin, SharedQuerysetMixin, serializers.PrimaryKeyRelatedField):
    """A related object from the caller's own rows only (RLS would hide others' too).

    ``scope(user)`` builds the queryset when the field is validated, not for every
    request: most creations send no project, parent or style stack. Without an
    authenticated caller (the OpenAPI generator) the declared empty queryset stands.
    """

    def __init__(self, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return super().get_queryset()
        return self.scope(user)


class PresetField(NoBlankRelatedMixin, SharedQuerysetMixin, serializers.SlugRelatedField):
    """An active preset by slug."""


class GenerationCreateInputSerializer(StrictInputMixin, serializers.Serializer):
    """``POST generations``: JSON, or multipart with a ``reference_image`` file."""

    server_owned_fields = (
        "id",
        "status",
        "credits_charged",
        "outputs",
        "error_message",
        "provider_request_id",
        "attempts",
        "started_at",
        "completed_at",
        "created_at",
        "user",
        "adapted_prompt",
        "adaptation",
    )

    ai_model = ActiveModelField(queryset=AIModel.objects.filter(is_active=True))
    prompt = serializers.CharField(max_length=10_000, trim_whitespace=False)
    negative_prompt = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    parameters = CleanJSONField(required=False, default=dict)
    project = CallerScopedPrimaryKeyField(
        lambda user: Project.objects.filter(user=user, archived_at__isnull=True),
        queryset=Project.objects.none(),
        required=False,
        allow_null=True,
    )
    parent = CallerScopedPrimaryKeyField(
        lambda user: Generation.objects.filter(user=user),
        queryset=Generation.objects.none(),
        required=False,
        allow_null=True,
    )
    reference_image = serializers.FileField(required=False, allow_empty_file=False, max_length=200)
    style_stack = CallerScopedPrimaryKeyField(
        stylestacks_visible_to, queryset=StyleStack.objects.none(), required=False, allow_null=True
    )
    preset = PresetField(
        slug_field="slug", queryset=StylePreset.objects.filter(is_active=True), required=False, allow_null=True
    )

    def validate_prompt(self, value):
        if not value.strip():
            raise serializers.ValidationError("This field may not be blank.")
        if "\x00" in value:
            raise serializers.ValidationError("Null characters are not allowed.")
        return value

    def validate_parameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Parameters must be a JSON object.")
        return value

    def validate_reference_image(self, upload):
        if upload.size > settings.REFERENCE_IMAGE_MAX_BYTES:
            raise serializers.ValidationError("The reference image must be 20 MB or smaller.")
        # Its content (type, pixels, whole decode) is checked where it is re-encoded for
        # storage, once: generations.services.generation_create (a 400 on this field).
        return upload


class GenerationStatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    credits_charged = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.DictField())
    by_model = serializers.DictField(child=serializers.DictField())
