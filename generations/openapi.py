"""The status stream in the OpenAPI description. ``GET generations/events`` is a plain
async Django view (no DRF view for drf-spectacular to read), so this postprocessing hook
(SPECTACULAR_SETTINGS) writes its operation by hand, beside the token endpoint."""

from __future__ import annotations

EVENTS_PATH = "/api/v1/generations/events"

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
_DESCRIPTION = """\
Your generations' status changes as [Server-Sent Events](https://html.spec.whatwg.org/multipage/server-sent-events.html)
(`text/event-stream`), served by the events process (`manage.py run_events`):

```
retry: 3000
: connected

id: 1842
event: generation
data: {"id": "…", "status": "processing", "outputs": [], …}

: keepalive
```

Each `generation` event's `id` is the event's id and its `data` the generation as `GET generations/{id}` \
shows it, with the status it changed to; `outputs` (signed links) in `completed` events only. A \
`: keepalive` comment comes every 15 s. Resume with the `Last-Event-ID` header (EventSource sends it when it \
reconnects) or `?last_event_id=`: the events after it (kept 24 h) come first, then live ones. The stream ends \
with `event: close` (`data`: `{"reason": "token_expired" | "signed_out" | "server_shutdown"}`) when the \
access token it was opened with expires, its session ends (signed out) or the server shuts down: reconnect \
with a fresh token and the last id. Browsers: `?token=` from `POST generations/events/token` (one connect, 60 s). \
A server that is not the events process answers 307 to it (`EVENTS_URL`) or 421 `events_not_routed` \
(Misdirected Request)."""


def add_generation_events(result, generator, request, public):
    """drf-spectacular postprocessing hook: the stream's operation."""
    operation = {
        "operationId": "generations_events",
        "summary": "Your generations' status changes, live (Server-Sent Events)",
        "description": _DESCRIPTION,
        "tags": ["generations"],
        "security": [{"jwtAuth": []}, {"streamToken": []}],
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "integer", "minimum": 0},
                "description": "Resume after this event id.",
            },
            {
                "name": "last_event_id",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 0},
                "description": "Resume after this event id (for EventSource, which cannot set headers).",
            },
        ],
        "responses": {
            "200": {
                "description": "The stream (never ends on its own but by `event: close`).",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "307": {"description": "Not the events process: the same request to `EVENTS_URL`."},
            "400": {"description": "`Last-Event-ID` is not an event id.", "content": _ERROR},
            "401": {
                "description": "No or a bad access token; a stream token expired, used, or not one.",
                "content": _ERROR,
            },
            "421": {
                "description": "Not the events process, and no `EVENTS_URL` to send the client to.",
                "content": _ERROR,
            },
        },
    }
    paths = result.setdefault("paths", {})
    ordered = {}
    for path, item in paths.items():
        if path == f"{EVENTS_PATH}/token":
            ordered[EVENTS_PATH] = {"get": operation}
        ordered[path] = item
    ordered.setdefault(EVENTS_PATH, {"get": operation})
    result["paths"] = ordered
    result.setdefault("components", {}).setdefault("securitySchemes", {})["streamToken"] = {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "A stream token from POST /api/v1/generations/events/token (GET generations/events only).",
    }
    return result
