"""A generation's outputs into our storage, before it completes (issue 15).

A provider hands back each output either as bytes (the local provider renders them) or
as a URL on its own CDN (fal). ``store_outputs`` turns both into files of ours:

* a URL is downloaded with a deadline (MEDIA_OUTPUT_TIMEOUT seconds in all, so a
  server that trickles bytes cannot hold the worker) and a size limit
  (MEDIA_MAX_OUTPUT_BYTES, checked against Content-Length and while reading), spooled
  to disk past a few MB rather than held in memory;
* the file must decode as what the model makes: an image model an accepted image
  (velro.media.decode_image: format, pixel limit, every frame), a video model an MP4 or
  WebM whose first frame decodes (or an animated image: the local provider's GIF). Its
  type, extension, width and height come from the decoded file, not the provider's word;
* it is stored under a generated name, ``generations/<user>/<generation>/<n>.<ext>``,
  next to a WebP thumbnail (longest side 512 px; for video and animations a poster
  frame), ``<n>.thumb.webp``.

Anything that fails is a ``ProviderError``: the worker fails the generation and refunds
it, and the files this call stored are deleted. An output is then
``{"path", "thumbnail_path", "mime_type", "width", "height", "size", "thumbnail_size",
"duration"?}``; the API mints signed links from the two paths whenever the row is read
(and shows neither path nor thumbnail_size).
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import time

import httpx
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from generations.providers.base import ProviderError
from velro import media
from velro.media_links import media_name_from_url

logger = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # bytes of a download kept in memory before it spills to disk


def output_name(generation, index: int, extension: str) -> str:
    return f"generations/{generation.user_id}/{generation.pk}/{index}.{extension}"


def store_outputs(generation, outputs: list[dict]) -> list[dict]:
    """Every output of ``generation`` stored (and checked) in our storage, with its
    thumbnail; or ``ProviderError`` with nothing left behind."""
    stored: list[str] = []
    try:
        return [_store_one(generation, index, output, stored) for index, output in enumerate(outputs)]
    except BaseException:
        delete_quietly(stored)
        raise


def stored_paths(outputs, reference: str = "") -> list[str]:
    """The storage names a row points at: its outputs' files and thumbnails (or an
    older row's ``/media/`` URL), and its ``reference`` image's name when given."""
    names = []
    for output in outputs or []:
        name = output.get("path") or media_name_from_url(output.get("url"))
        names.extend(n for n in (name, output.get("thumbnail_path")) if n)
    return [*names, reference] if reference else names


def outputs_bytes(outputs) -> int:
    """Bytes the stored files of ``outputs`` take (each file and its thumbnail)."""
    return sum(
        value
        for output in outputs or []
        for value in (output.get("size"), output.get("thumbnail_size"))
        if isinstance(value, int) and output.get("path")
    )


def delete_quietly(names) -> None:
    """Delete stored files, logging (not raising) what cannot be: an orphan file is
    harmless and ``media_gc`` finds it; an exception here would hide the real one."""
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001
            logger.warning("could not delete %s; media_gc will find it", name, exc_info=True)


def _store_one(generation, index: int, output: dict, stored: list[str]) -> dict:
    number = index + 1
    content = output.get("content")
    with io.BytesIO(content) if content is not None else download(output.get("url"), number) as fileobj:
        checked = _check(generation.ai_model.kind, fileobj, number)
        name = default_storage.save(output_name(generation, index, checked["extension"]), File(fileobj))
        stored.append(name)
        size = fileobj.seek(0, io.SEEK_END)
        thumbnail = default_storage.save(
            output_name(generation, index, "thumb.webp"), File(io.BytesIO(checked["thumbnail"]))
        )
        stored.append(thumbnail)
    shown = {
        "path": name,
        "thumbnail_path": thumbnail,
        "mime_type": checked["content_type"],
        "width": checked["size"][0],
        "height": checked["size"][1],
        "size": size,
        "thumbnail_size": len(checked["thumbnail"]),
    }
    duration = output.get("duration", checked.get("duration"))
    if duration is not None:
        shown["duration"] = duration
    return shown


def _check(kind: str, fileobj, number: int) -> dict:
    """What the file is, from its content; ProviderError unless it is what ``kind`` makes."""
    content_type = media.sniff_content_type(fileobj)
    try:
        if kind == "video" and content_type in media.VIDEO_TYPES:
            video = media.decode_video(fileobj)
            return {
                "content_type": video.content_type,
                "extension": video.extension,
                "size": video.size,
                "duration": round(video.duration, 3) if video.duration else None,
                "thumbnail": media.thumbnail_webp(video.poster),
            }
        decoded = media.decode_image(fileobj)
        if kind == "video" and decoded.frames < 2:
            raise ProviderError(f"Output {number} is a still image, not a video.")
        return {
            "content_type": decoded.content_type,
            "extension": decoded.extension,
            "size": decoded.size,
            "thumbnail": media.image_thumbnail(fileobj),
        }
    except media.ImageRejected as exc:
        what = "video" if kind == "video" else "image"
        raise ProviderError(f"Output {number} is not a usable {what} ({content_type}): {exc}") from exc


def download(url, number: int = 1):
    """The file at ``url`` (http or https) in a spooled temporary file, within
    MEDIA_OUTPUT_TIMEOUT seconds and MEDIA_MAX_OUTPUT_BYTES bytes; else ProviderError.
    The caller closes the file (``with download(...) as f``)."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ProviderError(f"Output {number} has no URL to download.")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        _stream_into(spool, url, number)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def _stream_into(spool, url: str, number: int) -> None:
    limit = settings.MEDIA_MAX_OUTPUT_BYTES
    budget = settings.MEDIA_OUTPUT_TIMEOUT
    deadline = time.monotonic() + budget
    timeout = httpx.Timeout(min(budget, 30.0), connect=min(budget, 10.0))
    try:
        with _client().stream("GET", url, headers={"Accept": "image/*,video/*"}, timeout=timeout) as response:
            if response.status_code != 200:
                raise ProviderError(f"Output {number} could not be downloaded: HTTP {response.status_code}.")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_big(number, limit)
            total = 0
            for chunk in response.iter_bytes():  # as it arrives: the deadline is checked often
                total += len(chunk)
                if total > limit:
                    raise _too_big(number, limit)
                if time.monotonic() > deadline:
                    raise ProviderError(f"Output {number} took longer than {budget:g} s to download.", retryable=True)
                spool.write(chunk)
    except httpx.TimeoutException as exc:
        raise ProviderError(f"Output {number} download timed out: {exc!r}.", retryable=True) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"Output {number} could not be downloaded: {exc!r}.", retryable=True) from exc


_shared = None
_shared_lock = threading.Lock()


def _client() -> httpx.Client:
    """One client for every download of the process (thread-safe, pooled connections):
    making one costs milliseconds of CPU (its TLS context), which a worker copying in
    hundreds of outputs at once (generations/inflight.py) would pay for each."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = httpx.Client(follow_redirects=True, max_redirects=3, limits=httpx.Limits(max_connections=64))
        return _shared


def _too_big(number: int, limit: int) -> ProviderError:
    return ProviderError(f"Output {number} is larger than the limit of {limit:,} bytes.")
