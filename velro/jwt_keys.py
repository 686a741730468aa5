"""The keys that sign and verify access tokens (issue 16; settings, "Access tokens' keys").

ES256, the default: a token is signed with an EC P-256 private key and names it in its
header (``kid``). The public halves are published at ``/auth/v1/.well-known/jwks.json``,
so another service verifies a token with that document alone, without a shared secret.
Several keys may be configured: the first signs, every one verifies and is published, so
a rotation is a new key put first and the old one removed once its tokens have expired.

HS256, Supabase's legacy mode: tokens are signed with the JWT secret
(``SIMPLE_JWT["SIGNING_KEY"]``), name no key, and nothing is published.

With DEBUG and no key configured, one is made on first use and kept in the data folder
(``JWT_DEV_KEYS_FILE``), so sessions outlive ``make run`` restarts. Production without a key
is refused (system check velro.E030), never quietly HS256.

accounts/tokens.py signs and verifies with these keys, accounts/gotrue.py publishes
them, velro/checks.py checks them; the benchmark hands them to its servers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import ECAlgorithm
from jwt.exceptions import InvalidKeyError

ALGORITHMS = ("ES256", "HS256")
_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)


@dataclass(frozen=True, eq=False)
class Key:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    public_key: ec.EllipticCurvePublicKey
    public_jwk: dict  # what the JWKS publishes


@dataclass(frozen=True, eq=False)
class KeySet:
    algorithm: str
    keys: tuple[Key, ...]  # none with HS256
    source: str  # the configuration they were read from (the benchmark passes it on)

    @property
    def signing(self) -> Key | None:
        return self.keys[0] if self.keys else None

    def verifying_key(self, kid) -> ec.EllipticCurvePublicKey | None:
        """The public key ``kid`` names, or None when it names none of ours."""
        return next((key.public_key for key in self.keys if key.kid == kid), None)

    def jwks(self) -> dict:
        return {"keys": [key.public_jwk for key in self.keys]}


def thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 of the key's required members, sorted, without whitespace."""
    members = json.dumps({name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()


def _key(private_key, kid: str | None, where: str) -> Key:
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(private_key.curve, ec.SECP256R1):
        raise ImproperlyConfigured(f"JWT signing key {where} is not an EC P-256 private key (ES256).")
    public_key = private_key.public_key()
    jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
    jwk = {**jwk, "kid": kid or thumbprint(jwk), "alg": "ES256", "use": "sig", "key_ops": ["verify"]}
    return Key(kid=jwk["kid"], private_key=private_key, public_key=public_key, public_jwk=jwk)


def _from_jwk(jwk, where: str) -> Key:
    if not isinstance(jwk, dict) or jwk.get("alg", "ES256") != "ES256":
        raise ImproperlyConfigured(f"JWT signing key {where} is not an ES256 JWK.")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ImproperlyConfigured(f"JWT signing key {where}: kid must be a non-empty string.")
    try:
        private_key = ECAlgorithm.from_jwk(jwk)
    except (InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise ImproperlyConfigured(f"JWT signing key {where} is not a valid JWK: {exc}") from exc
    return _key(private_key, kid, where)


def parse_keys(text: str) -> tuple[Key, ...]:
    """The keys of a configuration: PEM private keys, or JSON (a JWK set ``{"keys": […]}``,
    a list of JWKs as GoTrue's GOTRUE_JWT_KEYS, or one JWK). Raises ImproperlyConfigured."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        keys = []
        for number, block in enumerate(_PEM_PRIVATE_KEY.findall(text), 1):
            try:
                private_key = serialization.load_pem_private_key(block.encode(), password=None)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise ImproperlyConfigured(f"JWT signing key #{number} (PEM) does not load: {exc}") from exc
            keys.append(_key(private_key, None, f"#{number}"))
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ImproperlyConfigured("JWT signing keys must be JSON (JWKs) or PEM private keys.") from exc
        if isinstance(data, dict):
            data = data.get("keys", [data])
        if not isinstance(data, list):
            raise ImproperlyConfigured("JWT signing keys: expected a JWK, a list of JWKs or {'keys': [...]}.")
        keys = [_from_jwk(jwk, f"#{number}") for number, jwk in enumerate(data, 1)]
    if not keys:
        raise ImproperlyConfigured("JWT signing keys: no key found.")
    kids = [key.kid for key in keys]
    if len(set(kids)) != len(kids):
        raise ImproperlyConfigured("JWT signing keys: two keys have the same kid.")
    return tuple(keys)


def new_private_jwk() -> dict:
    """A new P-256 private key as a JWK, with its thumbprint as kid (GoTrue's shape)."""
    jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()), as_dict=True)
    return {**jwk, "kid": thumbprint(jwk), "alg": "ES256", "use": "sig", "key_ops": ["sign", "verify"]}


def dev_keys(path: Path) -> str:
    """The development key set kept in ``path``, made the first time it is asked for."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside (mode 0600) and linked into place: processes that start together
        # (runserver and its reloader, the workers) all end up with the one key linked first.
        fd, aside = tempfile.mkstemp(dir=path.parent, prefix=".jwt_signing_keys.")
        try:
            with os.fdopen(fd, "w") as file:
                json.dump({"keys": [new_private_jwk()]}, file, indent=2)
            try:
                os.link(aside, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(aside)
    return path.read_text()


@functools.lru_cache(maxsize=8)
def _load(algorithm: str, configured: str, dev_file: Path | None) -> KeySet:
    if algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(f"JWT_ALGORITHM must be ES256 or HS256, not {algorithm!r}.")
    if algorithm == "HS256":
        return KeySet(algorithm, (), "")
    if not configured.strip():
        if dev_file is None:
            raise ImproperlyConfigured("JWT_ALGORITHM is ES256 but no JWT_SIGNING_KEYS is set (velro.E030).")
        configured = dev_keys(Path(dev_file))
    return KeySet(algorithm, parse_keys(configured), configured)


def key_set() -> KeySet:
    """This deployment's keys, read once per configuration."""
    return _load(settings.JWT_ALGORITHM, settings.JWT_SIGNING_KEYS, settings.JWT_DEV_KEYS_FILE)
