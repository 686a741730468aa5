from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.models import Profile, Session
from velro.api import StrictInputMixin
from velro.media_links import signed_media_url

AVATAR_MAX_BYTES = 10 * 1024 * 1024

User = get_user_model()


class ProfileSerializer(StrictInputMixin, serializers.ModelSerializer):
    """The caller's profile. Only ``full_name`` and ``avatar_url`` (an external picture)
    are writable, and ``avatar``, an uploaded picture (multipart; stored as a 256 px
    square, shown as a signed link in ``avatar_url``); the database enforces the same
    with column grants."""

    id = serializers.UUIDField(source="user_id", read_only=True)
    avatar = serializers.FileField(
        write_only=True,
        required=False,
        help_text="An image (JPEG, PNG, WebP or GIF, at most 10 MB): stored as a 256 px square WebP.",
    )

    class Meta:
        model = Profile
        fields = [
            "id",
            "email",
            "full_name",
            "avatar_url",
            "avatar",
            "credits_balance",
            "storage_bytes",
            "current_plan",
            "created_at",
        ]
        read_only_fields = ["id", "email", "credits_balance", "storage_bytes", "current_plan", "created_at"]
        extra_kwargs = {"full_name": {"max_length": 100}}

    def validate_avatar(self, upload):
        if upload.size > AVATAR_MAX_BYTES:
            raise serializers.ValidationError(f"The image is larger than {AVATAR_MAX_BYTES // (1024 * 1024)} MB.")
        return upload

    def validate(self, attrs):
        if "avatar" in attrs and "avatar_url" in attrs:
            raise serializers.ValidationError({"avatar": "Send an avatar or an avatar_url, not both."})
        return attrs

    def to_representation(self, profile):
        data = super().to_representation(profile)
        if profile.avatar_path:  # an uploaded picture: a link minted now, as for every file
            data["avatar_url"] = signed_media_url(profile.avatar_path, request=self.context.get("request"))
        return data


class AuthResponseSerializer(serializers.Serializer):
    """What register and login answer (documentation)."""

    user = ProfileSerializer()
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField(help_text="The next refresh token: the one sent is used up.")


class RegisterInputSerializer(StrictInputMixin, serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        write_only=True, max_length=128, trim_whitespace=False, style={"input_type": "password"}
    )
    full_name = serializers.CharField(max_length=100, required=False, allow_blank=True)

    def validate_email(self, value):
        value = User.objects.normalize_email(value)
        if User.objects.filter(email__iexact=value).exists():
            raise serializers.ValidationError("A user with this email already exists.")
        return value

    def validate(self, attrs):
        # Django's validators (length, common, similarity, numeric), with the would-be
        # user so the similarity check sees the email and name.
        candidate = User(email=attrs["email"], raw_user_meta_data={"full_name": attrs.get("full_name", "")})
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginSerializer(StrictInputMixin, serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, style={"input_type": "password"})


class RefreshSerializer(StrictInputMixin, serializers.Serializer):
    refresh = serializers.CharField(max_length=4096, help_text="The refresh token from login, register or refresh.")


class LogoutSerializer(StrictInputMixin, serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=["local", "others", "global"],
        default="local",
        help_text="local: this session; others: every other session; global: all of them.",
    )


class SessionSerializer(serializers.ModelSerializer):
    """A signed-in device, as its owner sees it."""

    last_used_at = serializers.DateTimeField(read_only=True)
    current = serializers.SerializerMethodField(help_text="Whether this is the session of the token you sent.")

    class Meta:
        model = Session
        fields = ["id", "user_agent", "ip", "method", "created_at", "last_used_at", "current"]
        read_only_fields = fields

    def get_current(self, session) -> bool:
        return str(session.pk) == self.context.get("session_id")
