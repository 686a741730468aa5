"""Stripe's API on loopback: only what billing calls (customers, checkout sessions,
billing portal sessions, refunds, subscriptions and invoices retrieve, and products and
prices for ``manage.py stripe_sync_prices``).

stripe-python talks to it through STRIPE_API_BASE. Objects are kept in memory;
``requests`` records every call (method, path, the form decoded into nested dicts,
headers) so tests assert what the app asked Stripe for. Put a subscription or invoice
with ``put(obj)`` for the app to retrieve; anything else is a 404 ``resource_missing``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl

from tests.fakes.server import LoopbackServer


@dataclass
class Call:
    method: str
    path: str
    params: dict
    headers: dict


def unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding back into nested data: ``metadata[a]=1`` →
    ``{"metadata": {"a": "1"}}``, ``line_items[0][price]=p`` → a list."""
    root: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(node):
        if isinstance(node, dict):
            if node and all(key.isdigit() for key in node):
                return [lists(node[key]) for key in sorted(node, key=int)]
            return {key: lists(value) for key, value in node.items()}
        return node

    return lists(root)


class FakeStripe(LoopbackServer):
    def __init__(self):
        self.requests: list[Call] = []
        self.objects: dict[str, dict] = {}
        self.counter = itertools.count(1)
        self.lock = threading.Lock()
        super().__init__(_Handler, "stripe")

    def use(self, settings) -> None:
        """Point billing at this server."""
        settings.STRIPE_SECRET_KEY = "sk_test_fake"
        settings.STRIPE_API_BASE = self.base
        settings.STRIPE_MAX_NETWORK_RETRIES = 0

    def put(self, obj: dict) -> dict:
        self.objects[obj["id"]] = obj
        return obj

    def calls(self, path: str) -> list[Call]:
        return [call for call in self.requests if call.path == path]

    def new_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}_test_{next(self.counter)}"

    # One method per endpoint: (params) -> (status, body)

    def create_customer(self, params):
        return self.put(
            {
                "id": self.new_id("cus"),
                "object": "customer",
                "email": params.get("email"),
                "metadata": params.get("metadata", {}),
            }
        )

    def create_checkout_session(self, params):
        session_id = self.new_id("cs")
        return self.put(
            {
                "id": session_id,
                "object": "checkout.session",
                "mode": params.get("mode"),
                "status": "open",
                "payment_status": "unpaid",
                "client_reference_id": params.get("client_reference_id"),
                "customer": params.get("customer"),
                "metadata": params.get("metadata", {}),
                "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            }
        )

    def create_portal_session(self, params):
        return {
            "id": self.new_id("bps"),
            "object": "billing_portal.session",
            "customer": params.get("customer"),
            "return_url": params.get("return_url"),
            "url": "https://billing.stripe.test/p/session/1",
        }

    def create_refund(self, params):
        return self.put(
            {
                "id": self.new_id("re"),
                "object": "refund",
                "payment_intent": params.get("payment_intent"),
                "status": "succeeded",
            }
        )

    def create_product(self, params):
        return self.put({"id": self.new_id("prod"), "object": "product", "name": params.get("name"),
                         "metadata": params.get("metadata", {})})  # fmt: skip

    def create_price(self, params):
        return self.put({"id": self.new_id("price"), "object": "price", "product": params.get("product"),
                         "unit_amount": int(params.get("unit_amount", 0)), "currency": params.get("currency"),
                         "recurring": params.get("recurring")})  # fmt: skip


ROUTES = {
    ("POST", "/v1/customers"): FakeStripe.create_customer,
    ("POST", "/v1/checkout/sessions"): FakeStripe.create_checkout_session,
    ("POST", "/v1/billing_portal/sessions"): FakeStripe.create_portal_session,
    ("POST", "/v1/refunds"): FakeStripe.create_refund,
    ("POST", "/v1/products"): FakeStripe.create_product,
    ("POST", "/v1/prices"): FakeStripe.create_price,
}
RETRIEVABLE = ("/v1/subscriptions/", "/v1/invoices/", "/v1/checkout/sessions/")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str):
        stripe: FakeStripe = self.server.stripe
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode() if length else query
        params = unflatten(parse_qsl(form, keep_blank_values=True))
        stripe.requests.append(Call(method, path, params, dict(self.headers)))
        if self.headers.get("Authorization") != "Bearer sk_test_fake":
            return self._answer(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
        route = ROUTES.get((method, path))
        if route is not None:
            return self._answer(200, route(stripe, params))
        if method == "GET" and path.startswith(RETRIEVABLE) and path.rsplit("/", 1)[1] in stripe.objects:
            return self._answer(200, stripe.objects[path.rsplit("/", 1)[1]])
        return self._answer(
            404,
            {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": f"No such {path}"}},
        )

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")
