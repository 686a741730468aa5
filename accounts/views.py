from django.shortcuts import get_object_or_404
from rest_framework import permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import serializers, services
from accounts.models import Profile
from accounts.tokens import RefreshToken
from velro.api import BaseAPIView


class RegisterView(APIView):
    """``POST auth/register``: create an account, answer with the profile and tokens.

    Like the other token views it runs as the database owner, without the RLS glue: it
    creates the identity, which no API role may do. The URL-walk test names it as one
    of the three exceptions.
    """

    authentication_classes = []
    permission_classes = [permissions.AllowAny]

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


class LoginView(TokenObtainPairView):
    """``POST auth/login``: email + password → {access, refresh, user}."""

    serializer_class = serializers.LoginSerializer


class RefreshView(TokenRefreshView):
    """``POST auth/refresh``: refresh → {access}."""

    serializer_class = serializers.RefreshSerializer


class MeView(BaseAPIView):
    """``GET/PATCH me``: the caller's own profile, read and written under RLS."""

    def get_object(self):
        # RLS alone would return only the caller's row; the filter states the intent.
        return get_object_or_404(Profile, pk=self.request.user.pk)

    def get(self, request):
        return Response(serializers.ProfileSerializer(self.get_object()).data)

    def patch(self, request):
        profile = self.get_object()
        data = serializers.ProfileSerializer(profile, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        profile = services.profile_update(profile=profile, data=data.validated_data)
        return Response(serializers.ProfileSerializer(profile).data)
