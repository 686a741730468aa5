from django.conf import settings
from django.contrib.auth import authenticate
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import emails, serializers, services, sessions, throttles
from accounts.models import Profile, Session
from velro.api import BaseAPIView, BaseGenericViewSet
from velro.openapi import errors


class TokenView(throttles.RateLimitedView, APIView):
    """The views that sign people in. They run as the database owner, without the RLS
    glue: they create identities and sessions, which no API role may do (the URL-walk
    test names them as the exceptions). A refusal is a 401 (DRF would make it a 403
    without an authenticator)."""

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'


def _tokens(issued) -> dict:
    return {"access": issued.access_token, "refresh": issued.refresh_token}


class RegisterView(TokenView):
    """``POST auth/register``: create an account, answer with the profile and tokens."""

    throttle_classes = [throttles.RegisterIPThrottle, throttles.RegisterEmailThrottle]

    @extend_schema(
        summary="Create an account",
        description="New accounts get 100 credits and are signed in (a new session). With AUTH_EMAIL_CONFIRM "
        "on, the answer has no tokens: a confirmation link is emailed, and signing in works once it is "
        "followed. Passwords go through Django's validators.",
        tags=["accounts"],
        auth=[],
        request=serializers.RegisterInputSerializer,
        examples=[
            OpenApiExample(
                "register",
                request_only=True,
                value={"email": "maya@example.com", "password": "correct horse battery", "full_name": "Maya Lin"},
            )
        ],
        responses={201: serializers.AuthResponseSerializer, **errors(400, 429)},
    )
    def post(self, request):
        data = serializers.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        body = {"user": serializers.ProfileSerializer(user.profile).data}
        if settings.AUTH_EMAIL_CONFIRM:  # signed in once the emailed link is followed
            emails.send_confirmation(request, user)
            return Response(body, status=status.HTTP_201_CREATED)
        issued = sessions.session_start(user, request=request)
        return Response({**body, **_tokens(issued)}, status=status.HTTP_201_CREATED)


class LoginView(TokenView):
    """``POST auth/login``: email + password → a new session: {access, refresh, user}.
    Unknown email and wrong password give the same 401."""

    throttle_classes = [throttles.LoginIPThrottle, throttles.LoginEmailThrottle]

    @extend_schema(
        summary="Sign in",
        description="Email and password → a new session: an access token (15 min) and a refresh token. Sets "
        "last_sign_in_at.",
        tags=["accounts"],
        auth=[],
        request=serializers.LoginSerializer,
        examples=[
            OpenApiExample(
                "login", request_only=True, value={"email": "maya@example.com", "password": "correct horse battery"}
            )
        ],
        responses={200: serializers.AuthResponseSerializer, **errors(400, 401, 429)},
    )
    def post(self, request):
        data = serializers.LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None or user.is_banned:
            raise AuthenticationFailed("Invalid email or password.", code="no_active_account")
        if settings.AUTH_EMAIL_CONFIRM and user.email_confirmed_at is None:
            raise AuthenticationFailed(
                "Confirm your email address first: follow the emailed link.", "email_not_confirmed"
            )
        issued = sessions.session_start(user, request=request)
        return Response({**_tokens(issued), "user": serializers.ProfileSerializer(user.profile).data})


class RefreshView(TokenView):
    """``POST auth/refresh``: a refresh token → {access, refresh}. The token sent is used
    up (rotation); replaying a used one after a few seconds ends the session."""

    throttle_classes = [throttles.RefreshIPThrottle, throttles.RefreshUserThrottle]

    @extend_schema(
        summary="A new access token",
        description="Refresh tokens rotate: use the `refresh` of the answer next time. A used one presented "
        "again (after AUTH_REFRESH_TOKEN_REUSE_INTERVAL seconds) is taken as stolen: the session ends "
        "(`refresh_token_already_used`).",
        tags=["accounts"],
        auth=[],
        request=serializers.RefreshSerializer,
        responses={200: serializers.RefreshResponseSerializer, **errors(400, 401, 429)},
    )
    def post(self, request):
        data = serializers.RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = sessions.session_refresh(data.validated_data["refresh"], request=request)
        except sessions.SessionError as exc:
            # An answer, not an exception: what the refresh ended (a replayed token's
            # session) is committed.
            return Response(
                {"detail": exc.message, "code": exc.code},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": self.get_authenticate_header(request)},
            )
        return Response(_tokens(issued))


def _current_session(request) -> str | None:
    payload = getattr(request.auth, "payload", None) or {}
    return payload.get("session_id")


class LogoutView(BaseAPIView):
    """``POST auth/logout``: end this session, the others, or all of them."""

    @extend_schema(
        summary="Sign out",
        description="Ends sessions as `scope` says (`local`, the default: this one; `others`; `global`). "
        "Their refresh tokens stop working, and so do their access tokens, at once.",
        tags=["accounts"],
        request=serializers.LogoutSerializer,
        responses={204: None, **errors(400, 401)},
    )
    def post(self, request):
        data = serializers.LogoutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sessions.logout(request.user.pk, _current_session(request), data.validated_data["scope"])
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(
        summary="Your sessions",
        description="The devices signed in to your account, newest first; `current` marks this one.",
        tags=["accounts"],
        responses={200: serializers.SessionSerializer(many=True), **errors(400, 401, 404)},
    ),
    destroy=extend_schema(
        summary="End a session",
        description="Signs that device out: its refresh token and access tokens stop working at once.",
        tags=["accounts"],
        responses={204: None, **errors(401, 404)},
    ),
)
class SessionViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, BaseGenericViewSet):
    """``GET/DELETE me/sessions``: read and deleted under RLS (sessions_select_own,
    sessions_delete_own); the database deletes the refresh tokens with the row."""

    queryset = Session.objects.order_by("-created_at", "-id")
    serializer_class = serializers.SessionSerializer

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "session_id": _current_session(self.request)}


class MeView(BaseAPIView):
    """``GET/PATCH me``: the caller's own profile, read and written under RLS."""

    def get_object(self):
        # RLS alone would return only the caller's row; the filter states the intent.
        return get_object_or_404(Profile, pk=self.request.user.pk)

    @extend_schema(
        summary="Your profile", tags=["accounts"], responses={200: serializers.ProfileSerializer, **errors(401)}
    )
    def get(self, request):
        return Response(serializers.ProfileSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        summary="Edit your profile",
        description=(
            "Only full_name and avatar_url (JSON or multipart), or an uploaded `avatar` image (multipart: "
            "JPEG, PNG, WebP or GIF ≤ 10 MB, stored as a 256 px square, EXIF dropped; `avatar_url` then "
            "returns a signed link to it). Any other field is a 400 and nothing changes."
        ),
        tags=["accounts"],
        request=serializers.ProfileSerializer,
        examples=[OpenApiExample("rename", request_only=True, value={"full_name": "Maya L."})],
        responses={200: serializers.ProfileSerializer, **errors(400, 401)},
    )
    def patch(self, request):
        profile = self.get_object()
        context = {"request": request}
        data = serializers.ProfileSerializer(profile, data=request.data, partial=True, context=context)
        data.is_valid(raise_exception=True)
        profile = services.profile_update(profile=profile, data=data.validated_data)
        return Response(serializers.ProfileSerializer(profile, context=context).data)
