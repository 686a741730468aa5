"""``manage.py jwt_signing_key``: a new key to sign access tokens with."""

import json

from django.core.management.base import BaseCommand

from velro.jwt_keys import new_private_jwk


class Command(BaseCommand):
    help = (
        "Print a new ES256 (P-256) private key as one line of JSON (a JWK with its RFC 7638 thumbprint as kid), "
        "for JWT_SIGNING_KEYS. To rotate, configure [new, old] and later [new] (README). It is a secret."
    )
    # It is what fixes velro.E030 (no key in production): it must run without one.
    requires_system_checks = []

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(new_private_jwk(), separators=(",", ":")))
