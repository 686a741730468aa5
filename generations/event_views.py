"""``GET /api/v1/generations/events`` (Server-Sent Events) and its stream token.

The stream is an async Django view served by the events process (``manage.py
run_events``: uvicorn, ASGI), so an open stream holds no sync worker, thread or database
connection (generations.events: one hub per process). The rest of the API stays on
gunicorn's sync workers. Reached under WSGI (runserver, gunicorn) it streams nothing:
it redirects to ``EVENTS_URL`` when that is set (``make run``), else answers 421
``events_not_routed`` (Misdirected Request) — a WSGI server would hold a worker for each stream, and Django
would buffer the whole endless response.

Authentication happens once, at connect: the same bearer access tokens as the rest of
the API (accounts.authentication.JWTAuthentication, outside any transaction: the plain
lookups of the person and their session), or ``?token=`` with a stream token from
``POST generations/events/token`` (browsers' EventSource cannot send headers). The
stream ends when the access token it was opened with expires, or within a heartbeat of
its session ending (signed out; the hub checks); the client reconnects with a fresh
token and ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.views import View
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response

from accounts.authentication import JWTAuthentication
from accounts.models import Session, User
from generations import events
from generations.serializers import GenerationSerializer
from velro import rls
from velro.api import BaseAPIView
from velro.metrics import EVENT_STREAMS_CLOSED
from velro.openapi import errors

NOT_ROUTED = (
    "Live status is served by the events process (manage.py run_events), not by this server: "
    "route /api/v1/generations/events to it (README, Deploy)."
)


class StreamRefused(Exception):
    def __init__(self, detail: str, code: str):
        super().__init__(detail)
        self.detail, self.code = detail, code


def _unauthorized(detail: str, code: str) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _authenticate(request) -> tuple[User, dict, int | None, str | None]:
    """The person, their claims for RLS, when the stream must end (unix seconds) and the
    session it lives in. Sync (the ORM): run through sync_to_async, once per connect."""
    token = request.GET.get("token")
    if token is not None:
        try:
            payload = events.stream_token_read(token)
        except signing.SignatureExpired as exc:
            raise StreamRefused("This stream token has expired: ask for a new one.", "stream_token_expired") from exc
        except signing.BadSignature as exc:
            raise StreamRefused(
                "Not a stream token: ask POST /api/v1/generations/events/token for one (access tokens go in the "
                "Authorization header).",
                "stream_token_invalid",
            ) from exc
        # Used once: a second connect with it (a replayed URL, a logged one) is refused.
        if not cache.add(f"generations:events:token:{payload['jti']}", 1, timeout=settings.EVENTS_TOKEN_SECONDS + 5):
            raise StreamRefused("This stream token has been used: ask for a new one.", "stream_token_used")
        user = User.objects.filter(pk=payload["sub"], is_active=True).first()
        if user is None or not Session.objects.filter(pk=payload["sid"], user=user).exists():
            raise StreamRefused("This session has ended. Sign in again.", "session_not_found")
        return user, rls.user_claims(user), payload.get("exp"), payload["sid"]
    try:
        found = JWTAuthentication().authenticate(request)
    except exceptions.AuthenticationFailed as exc:
        # simplejwt's errors carry {"detail", "code"}; DRF's own a detail with its code.
        if isinstance(exc.detail, dict):
            detail, code = exc.detail.get("detail", ""), exc.detail.get("code") or exc.default_code
        else:
            detail, code = exc.detail, exc.get_codes()
        raise StreamRefused(str(detail), str(code)) from exc
    if found is None:
        raise StreamRefused("Authentication credentials were not provided.", "not_authenticated")
    user, token = found
    return user, rls.user_claims(user), token.payload.get("exp"), str(token.payload["session_id"])


def _authenticate_once(request):
    """:func:`_authenticate` in a thread of the shared pool, its connection handled as a
    request's would be (CONN_MAX_AGE, health checks) around it."""
    close_old_connections()
    try:
        return _authenticate(request)
    finally:
        close_old_connections()


def _closing(reason: str) -> str:
    """The stream's last message, ``event: close`` with why; counted by reason."""
    EVENT_STREAMS_CLOSED.labels(reason).inc()
    return f'event: close\ndata: {{"reason": "{reason}"}}\n\n'


def _last_event_id(request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id") or "0"
    try:
        value = int(raw)
    except ValueError:
        return -1
    return value if value >= 0 else -1


class GenerationEventsView(View):
    """The stream (see the module). Not an RLS view of its own: it runs in no request
    transaction; every row it sends is read as its owner by the hub
    (generations.events), under the same policies."""

    http_method_names = ["get", "options"]

    async def get(self, request):
        if not isinstance(request, ASGIRequest):
            if settings.EVENTS_URL:
                return HttpResponseRedirect(settings.EVENTS_URL + request.get_full_path(), status=307)
            return JsonResponse({"detail": NOT_ROUTED, "code": "events_not_routed"}, status=421)
        after = _last_event_id(request)
        if after < 0:
            return JsonResponse(
                {
                    "detail": "Last-Event-ID must be an event id (a whole number ≥ 0).",
                    "code": "invalid",
                    "errors": {"last_event_id": ["A whole number ≥ 0."]},
                },
                status=400,
            )
        try:
            # Not thread-sensitive: Django would run it in this request's own thread,
            # which lives as long as the stream, and its database connection with it
            # (500 streams, 500 connections). The shared pool's few threads keep theirs.
            user, claims, expires, session_id = await sync_to_async(_authenticate_once, thread_sensitive=False)(request)
        except StreamRefused as refused:
            return _unauthorized(refused.detail, refused.code)
        response = StreamingHttpResponse(
            self.stream(request, str(user.pk), claims, after, expires, session_id), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache, no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

    async def stream(
        self, request, user_id: str, claims: dict, after: int, expires: int | None, session_id: str | None = None
    ):
        heartbeat = settings.EVENTS_HEARTBEAT_SECONDS
        serializer = GenerationSerializer(context={"request": request})
        deadline = None if expires is None else time.monotonic() + events.seconds_left(expires)
        async with events.subscribed(user_id, claims, session_id) as (hub, subscription):
            # The first bytes: the client knows it is connected, and EventSource's retry.
            yield f"retry: {settings.EVENTS_RETRY_MILLISECONDS}\n: connected\n\n"
            sent: set[int] = set()
            # Without Last-Event-ID the stream starts now: should it have to catch up
            # (the hub lost its LISTEN connection) it replays only what came after this.
            last = after or await hub.latest_event_id(subscription)
            catch_up = after > 0
            while True:
                if catch_up:
                    for event in await hub.backlog(subscription, last):
                        if event.id not in sent:
                            sent.add(event.id)
                            last = max(last, event.id)
                            yield events.render_event(event, serializer)
                    catch_up = False
                timeout = heartbeat
                if deadline is not None:
                    timeout = min(timeout, deadline - time.monotonic())
                    if timeout <= 0:
                        yield _closing("token_expired")
                        return
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), timeout)
                except TimeoutError:
                    if deadline is None or time.monotonic() < deadline:
                        yield ": keepalive\n\n"
                    continue
                if item is events.CLOSE:
                    yield _closing("server_shutdown")
                    return
                if item is events.SIGNED_OUT:
                    yield _closing("signed_out")
                    return
                if item is events.RESYNC:
                    catch_up = True
                    continue
                if item.id in sent:
                    continue
                sent.add(item.id)
                last = max(last, item.id)
                yield events.render_event(item, serializer)


class GenerationEventsTokenView(BaseAPIView):
    """``POST generations/events/token``: a stream token for EventSource."""

    @extend_schema(
        summary="A short-lived token for the status stream (EventSource)",
        description=(
            "Browsers' `EventSource` cannot send an `Authorization` header: open "
            "`GET generations/events?token=<token>` instead. The token works for one connect, within "
            "`expires_in` seconds; the stream then lives as long as the access token that asked for it."
        ),
        tags=["generations"],
        request=None,
        responses={
            201: inline_serializer(
                "GenerationEventsToken",
                {
                    "token": serializers.CharField(),
                    "expires_in": serializers.IntegerField(help_text="Seconds the token may be used to connect."),
                    "url": serializers.CharField(help_text="The stream's path with the token."),
                },
            ),
            **errors(401),
        },
    )
    def post(self, request):
        payload = getattr(request.auth, "payload", {}) or {}
        token = events.stream_token_issue(
            user_id=request.user.pk, session_id=payload.get("session_id"), access_exp=payload.get("exp")
        )
        path = "/api/v1/generations/events?token=" + token
        return Response(
            {"token": token, "expires_in": settings.EVENTS_TOKEN_SECONDS, "url": settings.EVENTS_URL + path},
            status=201,
        )
