"""Every API view runs under the RLS glue, so none can run as the database owner by
accident. A new view that does not inherit it fails here."""

from django.urls import URLPattern, URLResolver, get_resolver

from velro.rls import RLSViewMixin

# The only API views that run as the owner, by name: they authenticate people and mint
# tokens, which no API role may do. Adding a name here needs a reviewer's yes.
TOKEN_VIEWS = {"RegisterView", "LoginView", "RefreshView"}
# Async, so in no request transaction for the glue to switch: GET generations/events
# authenticates at connect and reads every row it sends as its owner, with the owner's
# role and claims (generations.events; tests/generations/test_events.py proves a stream
# sees only its owner's rows, and that the read applies RLS).
STREAM_VIEWS = {"GenerationEventsView"}


def api_views(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from api_views(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/"):
            view = entry.callback
            cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
            yield route, view, cls


def test_the_walk_finds_the_api():
    routes = {route for route, _, _ in api_views()}
    assert {"api/v1/me", "api/v1/auth/login", "api/v1/auth/register", "api/v1/auth/refresh"} <= routes


def test_every_api_view_inherits_the_rls_glue():
    offenders = []
    for route, _view, cls in api_views():
        if cls is None:
            offenders.append(f"{route}: a function view (use velro.api base classes)")
        elif cls.__name__ in TOKEN_VIEWS | STREAM_VIEWS:
            continue
        elif not issubclass(cls, RLSViewMixin):
            offenders.append(f"{route}: {cls.__module__}.{cls.__name__}")
    assert offenders == []


def test_the_token_view_exceptions_still_exist():
    # A stale exception list would silently excuse a future view with the same name.
    names = {cls.__name__ for _, _, cls in api_views() if cls is not None}
    assert TOKEN_VIEWS | STREAM_VIEWS <= names
