"""Access tokens are signed with an asymmetric key published at
``/auth/v1/.well-known/jwks.json`` (issue 16): other services verify them with that
document alone; keys rotate; HS256 with the JWT secret stays as Supabase's legacy mode;
production without a key does not start (velro/jwt_keys.py)."""

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings as django_settings

from accounts.apikeys import api_key
from accounts.models import Session
from accounts.sessions import access_token_for
from tests.helpers import ROOT
from velro import jwt_keys
from velro.checks import check_jwt_keys

pytestmark = pytest.mark.django_db

JWKS = "/auth/v1/.well-known/jwks.json"


def access_token(user) -> str:
    access, _ = access_token_for(user, Session.objects.create(user=user))
    return access


def me(api, token):
    return api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def gotrue_user(api, token):
    return api.get("/auth/v1/user", HTTP_APIKEY=api_key("anon"), HTTP_AUTHORIZATION=f"Bearer {token}")


def configure(settings, *jwks):
    settings.JWT_SIGNING_KEYS = json.dumps({"keys": list(jwks)})


def test_a_token_verifies_with_the_published_jwks_alone(alice, api):
    published = api.get(JWKS)  # public: no API key
    assert published.status_code == 200
    assert published["Cache-Control"] == "public, max-age=600"
    (key,) = published.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"], key["use"], key["key_ops"]) == (
        "EC",
        "P-256",
        "ES256",
        "sig",
        ["verify"],
    )
    assert "d" not in key  # never the private half

    token = access_token(alice)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT", "kid": key["kid"]}
    # What another service does: the JWKS document, the key the token names, ES256.
    keys = jwt.PyJWKSet.from_dict(published.json())
    claims = jwt.decode(
        token, keys[jwt.get_unverified_header(token)["kid"]].key, algorithms=["ES256"], audience="authenticated"
    )
    assert (claims["sub"], claims["role"], claims["email"]) == (str(alice.pk), "authenticated", alice.email)
    assert me(api, token).status_code == 200 and gotrue_user(api, token).status_code == 200


def test_rotation_the_new_key_signs_the_old_one_verifies_until_removed(alice, api, settings):
    old, new = jwt_keys.new_private_jwk(), jwt_keys.new_private_jwk()
    configure(settings, old)
    before = access_token(alice)

    # First step: the new key is published, the old one still signs (verifiers' caches).
    configure(settings, old, new)
    assert [key["kid"] for key in api.get(JWKS).json()["keys"]] == [old["kid"], new["kid"]]
    assert jwt.get_unverified_header(access_token(alice))["kid"] == old["kid"]

    # Then the new key signs; the old one's tokens keep working.
    configure(settings, new, old)
    assert [key["kid"] for key in api.get(JWKS).json()["keys"]] == [new["kid"], old["kid"]]
    after = access_token(alice)
    assert jwt.get_unverified_header(after)["kid"] == new["kid"]
    assert me(api, before).status_code == 200 and me(api, after).status_code == 200

    # The old key removed: its tokens are refused on both surfaces.
    settings.JWT_SIGNING_KEYS = json.dumps([new])  # GoTrue's GOTRUE_JWT_KEYS shape: a list
    assert [key["kid"] for key in api.get(JWKS).json()["keys"]] == [new["kid"]]
    assert (me(api, before).status_code, me(api, before).json()["code"]) == (401, "token_not_valid")
    assert gotrue_user(api, before).json()["code"] == "bad_jwt"
    assert me(api, after).status_code == 200 and gotrue_user(api, after).status_code == 200


def test_hs256_mode_signs_with_the_jwt_secret_and_publishes_nothing(alice, api, settings):
    es256_token = access_token(alice)
    settings.JWT_ALGORITHM = "HS256"
    token = access_token(alice)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}  # no kid
    secret = django_settings.SIMPLE_JWT["SIGNING_KEY"]
    assert jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated")["sub"] == str(alice.pk)
    assert me(api, token).status_code == 200 and gotrue_user(api, token).status_code == 200
    assert api.get(JWKS).json() == {"keys": []}
    assert me(api, es256_token).status_code == 401

    # Back to ES256: a token without a kid (the secret's) is refused.
    settings.JWT_ALGORITHM = "ES256"
    assert me(api, token).status_code == 401 and gotrue_user(api, token).json()["code"] == "bad_jwt"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_signed_with(secret: bytes, header: dict, claims: dict) -> str:
    """A token signed by HMAC with ``secret`` whatever it is (PyJWT refuses public keys)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"


def test_alg_none_and_hs256_signed_with_the_public_key_are_refused(alice, api):
    good = access_token(alice)
    claims, kid = jwt.decode(good, options={"verify_signature": False}), jwt.get_unverified_header(good)["kid"]
    assert me(api, good).status_code == 200  # the same claims, signed properly, work
    public_pem = jwt_keys.key_set().signing.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = [
        jwt.encode(claims, None, algorithm="none", headers={"kid": kid}),
        _hs256_signed_with(public_pem, {"alg": "HS256", "typ": "JWT", "kid": kid}, claims),
        _hs256_signed_with(api.get(JWKS).content, {"alg": "HS256", "typ": "JWT", "kid": kid}, claims),
        _hs256_signed_with(public_pem, {"alg": "HS256", "typ": "JWT"}, claims),
        # ES256 by a key of someone else's, naming ours, or none, or one we do not have.
        jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid}),
        jwt.encode(claims, jwt_keys.key_set().signing.private_key, algorithm="ES256"),
        jwt.encode(claims, jwt_keys.key_set().signing.private_key, algorithm="ES256", headers={"kid": "other"}),
    ]
    for token in forged:
        assert (me(api, token).status_code, me(api, token).json()["code"]) == (401, "token_not_valid"), token
        assert gotrue_user(api, token).json()["code"] == "bad_jwt", token


def test_tokens_broken_anywhere_are_refused_like_before(alice, api):
    """The key is picked from the header segment alone (accounts.tokens.unverified_kid);
    jwt.decode checks the rest. A token broken in any segment, or with a header that is
    not a JSON object, is a 401 token_not_valid as it was."""
    good = access_token(alice)
    header, payload, signature = good.split(".")
    kid = jwt.get_unverified_header(good)["kid"]
    broken = [
        "x",
        header,
        f"{header}.",
        f"{header}.{payload}",
        f"{header}.{payload}.",
        f"{header}.{payload}.{signature}x",
        f"{header}.{payload}!.{signature}",
        f"{header}.{payload}.{signature}.{signature}",
        f"{header}x.{payload}.{signature}",
        f"!{header}.{payload}.{signature}",
        f"{_b64(b'[1]')}.{payload}.{signature}",
        f"{_b64(b'not json')}.{payload}.{signature}",
        f"{_b64(json.dumps({'alg': 'ES256', 'kid': [kid]}).encode())}.{payload}.{signature}",
        f"{_b64(json.dumps({'alg': 'ES256', 'kid': kid, 'crit': ['x']}).encode())}.{payload}.{signature}",
        f"{_b64(json.dumps({'alg': 'ES256', 'kid': kid}).encode())}.{payload}.{signature}",  # header changed
    ]
    for token in broken:
        response = me(api, token)
        assert (response.status_code, response.json()["code"]) == (401, "token_not_valid"), token
    assert me(api, good).status_code == 200


def test_production_without_a_key_fails_the_system_check(settings):
    settings.JWT_SIGNING_KEYS, settings.JWT_DEV_KEYS_FILE = "", None
    assert [error.id for error in check_jwt_keys(None)] == ["velro.E030"]
    settings.JWT_ALGORITHM = "HS256"
    assert check_jwt_keys(None) == []


@pytest.mark.parametrize(
    "configured",
    [
        "not json, not PEM",
        "{}",
        '{"keys": []}',
        json.dumps({k: v for k, v in jwt_keys.new_private_jwk().items() if k != "d"}),  # public only
        json.dumps({**jwt_keys.new_private_jwk(), "alg": "ES384"}),
        json.dumps([jwt_keys.new_private_jwk() | {"kid": "same"}, jwt_keys.new_private_jwk() | {"kid": "same"}]),
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode(),
        ec.generate_private_key(ec.SECP384R1())
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode(),
    ],
)
def test_keys_that_do_not_load_fail_the_system_check(settings, configured):
    settings.JWT_SIGNING_KEYS = configured
    assert [error.id for error in check_jwt_keys(None)] == ["velro.E031"]


def test_pem_keys_are_named_by_their_thumbprint(settings):
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    pem = [
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        for key in (first, second)
    ]
    settings.JWT_SIGNING_KEYS = (pem[0] + pem[1]).decode()
    from_pem = jwt_keys.key_set()
    # The same key as a JWK without a kid gets the same name (RFC 7638).
    settings.JWT_SIGNING_KEYS = json.dumps(jwt.algorithms.ECAlgorithm.to_jwk(first, as_dict=True))
    assert from_pem.signing.kid == jwt_keys.key_set().signing.kid
    assert len(from_pem.keys) == 2 and check_jwt_keys(None) == []


def test_development_keeps_one_key_in_the_data_folder(alice, api, settings, tmp_path):
    settings.JWT_SIGNING_KEYS, settings.JWT_DEV_KEYS_FILE = "", tmp_path / "data" / "jwt_signing_keys.json"
    assert check_jwt_keys(None) == []
    token = access_token(alice)
    stored = settings.JWT_DEV_KEYS_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600 and os.listdir(stored.parent) == [stored.name]
    (key,) = json.loads(stored.read_text())["keys"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]

    jwt_keys._load.cache_clear()  # a restart: the same key, so the token still works
    assert jwt_keys.key_set().signing.kid == key["kid"]
    assert me(api, token).status_code == 200


def _manage_check(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "production-like-key-" * 4,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing",  # parsed, never connected
        "EMAIL_URL": "smtp://smtp.example.com:25",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **production, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_deployment_without_a_key_does_not_pass_manage_py_check(tmp_path):
    refused = _manage_check()
    assert refused.returncode != 0 and "velro.E030" in refused.stderr

    key_file = tmp_path / "jwt-key.pem"  # what `openssl genpkey -algorithm EC …` writes
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    accepted = _manage_check(JWT_SIGNING_KEYS_FILE=str(key_file))
    assert accepted.returncode == 0, accepted.stderr
