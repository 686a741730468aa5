"""``GET /metrics``: everything Prometheus scrapes, closed to the public.

Who may scrape (settings "Metrics"): a request with ``Authorization: Bearer
<METRICS_TOKEN>`` (compared in constant time), or one whose REMOTE_ADDR is in
METRICS_ALLOWED_NETWORKS. With neither configured the endpoint does not exist (404),
except from loopback while DEBUG is on (``make run``). A configured endpoint refuses
others with 401 (a token is configured: say how to authenticate) or 403 (networks only).

What it exports: the counters and histograms of velro/metrics.py — added up over every
process of this host when PROMETHEUS_MULTIPROC_DIR is set (prometheus-client's
multiprocess mode), else this process's own — and the database's gauges
(health/metrics.py), cached. No session, no authentication against the database, no
transaction: the view answers when the database is down, with ``velro_database_up 0``.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, values
from prometheus_client.exposition import choose_encoder

from health.metrics import DatabaseCollector
from velro.prometheus_files import folder_lock


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _client_address(request):
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None


def _token_matches(request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def access_refused(request) -> HttpResponse | None:
    """None when ``request`` may read the metrics, else the response refusing it."""
    token, cidrs = settings.METRICS_TOKEN, tuple(settings.METRICS_ALLOWED_NETWORKS)
    if token and _token_matches(request, token):
        return None
    address = _client_address(request)
    if cidrs and address is not None and any(address in network for network in _networks(cidrs)):
        return None
    if not token and not cidrs:
        if settings.DEBUG and address is not None and address.is_loopback:
            return None
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    if token:
        response = HttpResponse("A valid bearer token is required.", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse("Forbidden.", status=403, content_type="text/plain")


class _Folder(multiprocess.MultiProcessCollector):
    """Every process's files, read while no dead worker's files are being folded into
    the archives (velro/prometheus_files.py)."""

    def collect(self):
        with folder_lock(self._path, exclusive=False):
            return list(super().collect())


class _ThisProcess:
    """The default registry's collectors (this process's counters, and its process and
    Python figures), for a process that is not in multiprocess mode."""

    def collect(self):
        return REGISTRY.collect()


DATABASE = DatabaseCollector()


def multiprocess_mode() -> bool:
    """Whether this process's metrics live in PROMETHEUS_MULTIPROC_DIR's files: decided
    by prometheus-client when it was imported, whatever the environment says now."""
    return values.ValueClass is not values.MutexValue


def registry() -> CollectorRegistry:
    """A registry for one scrape: every process's files (multiprocess mode) or this
    process's values, and the database's gauges."""
    scrape = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        _Folder(scrape)
    else:
        scrape.register(_ThisProcess())
    scrape.register(DATABASE)
    return scrape


@transaction.non_atomic_requests
@require_GET
def metrics_view(request):
    refused = access_refused(request)
    if refused is not None:
        return refused
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
