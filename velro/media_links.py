"""Short-lived signed links to stored media (issue 15).

Every URL the API hands out for a stored file is minted here, when the row is read, by
``signed_media_url``: whoever may read the row gets a link that works for
``MEDIA_URL_TTL`` seconds, and nobody ever learns a stable one. With ``MEDIA_STORAGE``
``local`` a link is the file's ``/media/`` path with ``expires`` (a Unix time) and
``sig``, an HMAC of the storage name, the expiry and the download flag made with
Django's ``Signer`` (so ``SECRET_KEY_FALLBACKS`` keeps links valid across a key
rotation). ``media_link_check`` is the other half, for the view that serves them. With
``s3`` a link is a URL presigned by boto3 (``storage.url()``) straight to the private
bucket, carrying the response's ``Cache-Control`` (and for a download its
``Content-Disposition``) in its signature; the app never sees those requests.

Local expiry times are rounded down to a tenth of the TTL, so the links minted for a file in
the same few minutes are the same URL and a browser's cache keeps working between two
reads of a list. Minting is one HMAC: no database, no file system.

Plain functions; this module imports no domain app.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import posixpath
import time
from urllib.parse import unquote

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.utils.encoding import filepath_to_uri, iri_to_uri
from django.utils.http import content_disposition_header

from velro.storage import BACKUP_PREFIX

SALT = "velro.media-link"


class MediaLinkRefused(Exception):
    """A link whose signature does not match, or that has expired. ``reason``:
    ``bad_signature`` or ``expired``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


@functools.lru_cache(maxsize=4)
def _minting_key(secret: str) -> bytes:
    # salted_hmac's derived key for Signer(salt=SALT): computed once per SECRET_KEY.
    return hashlib.sha256(f"{SALT}signer{secret}".encode()).digest()


def _signature(value: str, key: bytes | None = None) -> str:
    """``Signer(salt=SALT).signature(value)`` (tests hold the two equal), without
    deriving the key again for every link: a list page mints dozens. ``key``: the
    ``_minting_key`` of the current SECRET_KEY, when the caller has it."""
    digest = hmac.digest(key or _minting_key(settings.SECRET_KEY), value.encode(), "sha256")
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signed_value(name: str, expires: int, download: bool) -> str:
    # The name cannot hide a field: expires and the flag are split off from the right.
    return f"{name}\n{expires}\n{1 if download else 0}"


def link_expiry(ttl: int, now: float | None = None) -> int:
    """When a link minted ``now`` for ``ttl`` seconds expires: ``now + ttl`` rounded down
    to a tenth of ``ttl`` (at least 1 s), so it lives between 0.9 and 1 times ``ttl``."""
    now = int(time.time() if now is None else now)
    step = max(1, ttl // 10)
    return (now + ttl) // step * step


def signed_media_url(name: str, *, request=None, ttl: int | None = None, download: bool = False) -> str:
    """A link to the stored file ``name`` valid for ``ttl`` seconds (MEDIA_URL_TTL by
    default); absolute when ``request`` is given. ``download``: served as an attachment
    with a readable file name."""
    return LinkMinter(request, ttl)(name, download=download)


class LinkMinter:
    """``signed_media_url(name, request=request, ttl=ttl)`` for the many links of one
    response: the settings it reads (the storage, MEDIA_URL, the TTL, the key derived
    from SECRET_KEY) are read once, when the minter is made, instead of for every link
    (four lazy-settings lookups each; a list page of generations mints one or two links
    a row). Make one per response: the expiry is still worked out for every link."""

    __slots__ = ("request", "ttl", "s3", "media_url", "key", "prefix")

    def __init__(self, request=None, ttl: int | None = None):
        self.request = request
        self.ttl = settings.MEDIA_URL_TTL if ttl is None else ttl
        self.s3 = settings.MEDIA_STORAGE == "s3"
        self.media_url = settings.MEDIA_URL
        self.key = None if self.s3 else _minting_key(settings.SECRET_KEY)
        self.prefix = self._absolute_prefix(request, self.media_url)

    @staticmethod
    def _absolute_prefix(request, media_url: str) -> str | None:
        """``scheme://host`` when ``request.build_absolute_uri(url)`` of every link minted
        here is that plus ``url``: a root-relative MEDIA_URL, and a scheme and host that
        ``iri_to_uri`` leaves as they are. The links themselves are made of characters
        ``iri_to_uri`` leaves alone too (``filepath_to_uri``'s quoting, the digits and
        base64url of the query), so its pass over each link (~3 % of a list page) is
        skipped with the same result (tests compare the two)."""
        if request is None or not media_url.startswith("/") or media_url.startswith("//"):
            return None
        if "/./" in media_url or "/../" in media_url or iri_to_uri(media_url) != media_url:
            return None
        prefix = request._current_scheme_host
        return prefix if iri_to_uri(prefix) == prefix else None

    def __call__(self, name: str, *, download: bool = False) -> str:
        if name.startswith(BACKUP_PREFIX):  # the database's backups share an S3 bucket: never linked
            raise ValueError(f"no media link to a backup: {name}")
        if self.s3:
            return _presigned_url(name, self.ttl, download)
        expires = link_expiry(self.ttl)
        sig = _signature(_signed_value(name, expires, download), self.key)
        query = f"download=1&expires={expires}&sig={sig}" if download else f"expires={expires}&sig={sig}"
        # FileSystemStorage.url(name) for the names signed here (no "..", no leading "/"),
        # without its urljoin.
        url = f"{self.media_url}{filepath_to_uri(name)}?{query}"
        if self.prefix is not None and "/./" not in url and "/../" not in url:
            return self.prefix + url
        request = self.request
        return request.build_absolute_uri(url) if request is not None else url


def _presigned_url(name: str, ttl: int, download: bool) -> str:
    parameters = {"ResponseCacheControl": f"private, max-age={ttl}"}
    if download:
        parameters["ResponseContentDisposition"] = content_disposition_header(True, download_name(name))
    return default_storage.url(name, parameters=parameters, expire=ttl)


def download_name(name: str) -> str:
    """A readable name for a download: the folder and the file, ``velro-`` first
    (``…/generations/<id>/0.png`` → ``velro-<id>-0.png``)."""
    parts = [part for part in posixpath.normpath(name).split("/") if part not in ("", ".", "..")]
    return "-".join(["velro", *parts[-2:]])


def media_link_check(name: str, *, expires: str, sig: str, download: bool, now: float | None = None) -> int:
    """Seconds the link to ``name`` has left, or ``MediaLinkRefused``."""
    try:
        expires_at = int(expires)
        _signer().unsign(f"{_signed_value(name, expires_at, download)}{_signer().sep}{sig}")
    except (ValueError, signing.BadSignature) as exc:
        raise MediaLinkRefused("bad_signature", "This media link is not valid.") from exc
    remaining = expires_at - int(time.time() if now is None else now)
    if remaining <= 0:
        raise MediaLinkRefused("expired", "This media link has expired.")
    return remaining


def media_name_from_url(url, request=None, media_url: str | None = None) -> str | None:
    """The storage name behind a URL stored by older rows (the local provider kept
    ``storage.url(name)``: ``/media/<name>``, or the same made absolute on this host),
    or None for anything else (a provider's CDN, a path that would leave MEDIA_ROOT)."""
    if not isinstance(url, str) or "?" in url or "#" in url:
        return None
    # ``media_url``: settings.MEDIA_URL, when the caller has it (a LinkMinter's, read once
    # per response instead of once per output).
    media_url = settings.MEDIA_URL if media_url is None else media_url
    if url.startswith(media_url):
        rest = url[len(media_url) :]
    elif request is not None and url.startswith(("http://", "https://")):
        prefix = request._current_scheme_host + media_url
        if not url.startswith(prefix):
            return None
        rest = url[len(prefix) :]
    else:
        return None
    name = posixpath.normpath(unquote(rest))
    if name in (".", "..") or name.startswith(("../", "/")) or "\x00" in name or "\\" in name:
        return None
    return name
