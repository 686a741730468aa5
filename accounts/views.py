from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import serializers, services, throttles
from accounts.models import Profile
from accounts.tokens import RefreshToken
from velro.api import BaseAPIView
from velro.openapi import errors


class RegisterView(throttles.RateLimitedView, APIView):
    """``POST auth/register``: create an account, answer with the profile and tokens.

    Like the other token views it runs as the database owner, without the RLS glue: it
    creates the identity, which no API role may do. The URL-walk test names it as one
    of the three exceptions.
    """

    authentication_classes = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [throttles.RegisterIPThrottle, throttles.RegisterEmailThrottle]

    @extend_schema(
        summary="Create an account",
        description="New accounts get 100 credits. Passwords go through Django's validators.",
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
        refresh = RefreshToken.for_user(user)
        body = {
            "user": serializers.ProfileSerializer(user.profile).data,
            "access": str(refresh.access_token),
            "refresh": str(refresh),
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema_view(
    post=extend_schema(
        summary="Sign in",
        description="Email and password → an access token (15 min) and a refresh token. Sets last_sign_in_at.",
        tags=["accounts"],
        auth=[],
        examples=[
            OpenApiExample(
                "login", request_only=True, value={"email": "maya@example.com", "password": "correct horse battery"}
            )
        ],
        responses={200: serializers.AuthResponseSerializer, **errors(400, 401, 429)},
    )
)
class LoginView(throttles.RateLimitedView, TokenObtainPairView):
    """``POST auth/login``: email + password → {access, refresh, user}."""

    serializer_class = serializers.LoginSerializer
    throttle_classes = [throttles.LoginIPThrottle, throttles.LoginEmailThrottle]


@extend_schema_view(
    post=extend_schema(
        summary="A new access token",
        tags=["accounts"],
        auth=[],
        responses={200: serializers.RefreshResponseSerializer, **errors(400, 401, 429)},
    )
)
class RefreshView(throttles.RateLimitedView, TokenRefreshView):
    """``POST auth/refresh``: refresh → {access}."""

    serializer_class = serializers.RefreshSerializer
    throttle_classes = [throttles.RefreshIPThrottle, throttles.RefreshUserThrottle]


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
