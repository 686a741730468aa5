"""Stored media: decode images within limits, and decide how a stored file may be served.

Two rules, for every place that reads or serves an upload or an output:

* **Decoding** (``decode_image``): Pillow opens only the accepted formats, refuses more
  than ``settings.MAX_IMAGE_PIXELS`` pixels (its own decompression-bomb check, with the
  warning turned into an error), verifies the file and decodes every frame, so a bomb,
  a truncated file or something that is not an image is an ``ImageRejected`` with a
  reason — never a crash or a 500.
* **Serving** (``sniff_content_type`` + ``media_headers``): the type comes from the
  content — Pillow for images, magic bytes for mp4/webm — never from the file name or
  the uploader's header. Every answer carries ``nosniff`` and a sandboxing CSP, and
  anything that is not an image or video is an ``application/octet-stream`` attachment,
  so nothing stored can run as a page of this origin.

Plain functions on file objects, for MEDIA_ROOT today and object storage later. This
module imports no domain app.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

# Formats decoded for uploads and served inline: what every browser shows as an image.
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
VIDEO_TYPES = ("video/mp4", "video/webm")
INLINE_TYPES = frozenset(IMAGE_TYPES.values()) | frozenset(VIDEO_TYPES)
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
}
OCTET_STREAM = "application/octet-stream"

# On every media answer: no type sniffing, and were it ever rendered as a document, no
# script, no plugin, no same-origin rights (a unique opaque origin).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

# What a damaged file makes Pillow's decoders raise (besides the bomb check's own).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error, zlib.error)
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
_ACCEPTED = "JPEG, PNG, WebP or GIF"


class ImageRejected(Exception):
    """Not an acceptable image. ``reason``: ``too_many_pixels``, ``not_an_image`` or
    ``truncated``; ``str()`` is a sentence for the person who sent it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class DecodedImage:
    format: str  # Pillow's name: "PNG", "JPEG", …
    content_type: str
    extension: str
    size: tuple[int, int]
    frames: int


def max_image_pixels() -> int:
    """``settings.MAX_IMAGE_PIXELS``, also made Pillow's own limit for this process (so
    its decompression-bomb check uses the same number wherever Pillow decodes)."""
    limit = settings.MAX_IMAGE_PIXELS
    if Image.MAX_IMAGE_PIXELS != limit:
        Image.MAX_IMAGE_PIXELS = limit
    return limit


def check_pixels(width: int, height: int, frames: int = 1) -> None:
    """Raise ``ImageRejected("too_many_pixels")`` when ``frames`` images of
    ``width``×``height`` exceed MAX_IMAGE_PIXELS (for code that makes images too)."""
    limit = max_image_pixels()
    total = max(width, 1) * max(height, 1) * max(frames, 1)
    if total > limit:
        what = f"{width}×{height}" if frames <= 1 else f"{frames} frames of {width}×{height}"
        raise ImageRejected(
            "too_many_pixels", f"The image has too many pixels: {what} is {total:,}, over the limit of {limit:,}."
        )


def decode_image(fileobj: IO[bytes], *, formats=IMAGE_TYPES) -> DecodedImage:
    """Identify, verify and decode all of ``fileobj`` — one of ``formats`` (Pillow
    names), at most MAX_IMAGE_PIXELS pixels over all its frames — or raise
    ``ImageRejected``. The file's position is left where it was."""
    return _decode(fileobj, formats, keep_frames=False)[0]


def _decode(fileobj: IO[bytes], formats, *, keep_frames: bool) -> tuple[DecodedImage, list[Image.Image]]:
    """``decode_image``, and with ``keep_frames`` the decoded frames (copies, with the
    image's ``info``) for a caller that writes them anew: one decode serves both."""
    limit = max_image_pixels()
    start = fileobj.tell()
    kept: list[Image.Image] = []
    try:
        with warnings.catch_warnings():
            # Pillow warns between the limit and twice it, and raises above: both refuse.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                kind, size = _identify_and_verify(fileobj, formats)
                # verify() leaves the image unusable: open it again and decode every
                # frame, their pixels counted against the same limit.
                fileobj.seek(start)
                with Image.open(fileobj, formats=[kind]) as image:
                    frames = 0
                    for frame in ImageSequence.Iterator(image):
                        frames += 1
                        check_pixels(*frame.size, frames=frames)
                        frame.load()
                        if keep_frames:
                            kept.append(frame.copy())
            except _BOMB_ERRORS as exc:
                raise _too_many_pixels(limit) from exc
            except _DECODE_ERRORS as exc:
                raise _truncated() from exc
    finally:
        fileobj.seek(start)
    content_type = IMAGE_TYPES.get(kind) or Image.MIME.get(kind, OCTET_STREAM)
    return DecodedImage(kind, content_type, extension_for(content_type), size, frames), kept


def _identify_and_verify(fileobj: IO[bytes], formats) -> tuple[str, tuple[int, int]]:
    try:
        image = Image.open(fileobj, formats=list(formats))  # reads the header only
    except UnidentifiedImageError as exc:  # no accepted format recognises it (others: damaged)
        raise ImageRejected("not_an_image", f"The file is not a {_ACCEPTED} image.") from exc
    with image:
        check_pixels(*image.size)  # also when another thread's warning filters won
        image.verify()  # PNG: every chunk and its CRC, up to IEND
        return image.format, image.size


def _too_many_pixels(limit: int) -> ImageRejected:
    return ImageRejected("too_many_pixels", f"The image has too many pixels: over the limit of {limit:,}.")


def _truncated() -> ImageRejected:
    return ImageRejected("truncated", "The image is truncated or damaged: it does not decode in full.")


def sniff_content_type(fileobj: IO[bytes]) -> str:
    """The type to serve ``fileobj`` as, from its content alone: an image type when
    Pillow identifies one of IMAGE_TYPES (within MAX_IMAGE_PIXELS), ``video/mp4`` or
    ``video/webm`` by their magic bytes, else ``application/octet-stream``. Reads the
    header only; the file's position is left where it was."""
    start = fileobj.tell()
    try:
        fileobj.seek(0)
        head = fileobj.read(64)
        video = _video_type(head)
        if video:
            return video
        fileobj.seek(0)
        max_image_pixels()
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                with Image.open(fileobj, formats=list(IMAGE_TYPES)) as image:
                    return IMAGE_TYPES[image.format]
            except (*_BOMB_ERRORS, *_DECODE_ERRORS):
                return OCTET_STREAM
    finally:
        fileobj.seek(start)


# ISO base media brands of MP4 video (not HEIF/AVIF images, not QuickTime).
_MP4_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash", b"M4V "}
# After the EBML magic: the DocType element (0x4282), its size (a 1–8 byte vint), "webm".
_WEBM_DOCTYPE = re.compile(rb"\x42\x82[\x81-\xff].{0,7}?webm", re.DOTALL)


def _video_type(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in _MP4_BRANDS:
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3") and _WEBM_DOCTYPE.search(head):
        return "video/webm"
    return None


def extension_for(content_type: str) -> str:
    """The file name extension for a content type (``bin`` for anything else)."""
    return EXTENSIONS.get(content_type, "bin")


def media_headers(content_type: str) -> dict[str, str]:
    """Response headers for a stored file of ``content_type`` (from
    ``sniff_content_type``): images and videos inline, anything else an octet-stream
    attachment; always ``nosniff`` and the sandboxing CSP."""
    if content_type in INLINE_TYPES:
        return {"Content-Type": content_type, **SECURITY_HEADERS}
    return {"Content-Type": OCTET_STREAM, "Content-Disposition": "attachment", **SECURITY_HEADERS}


def reencode_image(fileobj: IO[bytes], *, formats=IMAGE_TYPES) -> tuple[bytes, DecodedImage]:
    """``fileobj`` decoded (``decode_image``'s rules) and written anew in its own format:
    the bytes to store, and what they are. Only pixels survive — not what was appended
    after the image (a polyglot's HTML), not EXIF (a phone photo's GPS position), text
    chunks or comments. The EXIF orientation is applied to the pixels first, so the
    picture still stands the right way up without it."""
    decoded, frames = _decode(fileobj, formats, keep_frames=True)
    out = io.BytesIO()
    if decoded.frames > 1 and decoded.format in ("GIF", "WEBP"):
        durations = frames[0].info.get("duration", 100)
        frames[0].save(out, format=decoded.format, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    else:
        clean = ImageOps.exif_transpose(frames[0])
        if decoded.format == "JPEG" and clean.mode not in ("RGB", "L", "CMYK"):
            clean = clean.convert("RGB")
        # No exif=, icc_profile=, pnginfo= or comment: Pillow writes none of them.
        clean.save(out, format=decoded.format, **_SAVE_OPTIONS.get(decoded.format, {}))
    return out.getvalue(), decoded


_SAVE_OPTIONS = {"JPEG": {"quality": 92}, "WEBP": {"quality": 92}, "PNG": {"optimize": False}}


# --- Thumbnails and video posters (issue 15) -----------------------------------------

THUMBNAIL_SIDE = 512  # px, the longest side of a thumbnail
THUMBNAIL_TYPE = "image/webp"


def _upright(image: Image.Image) -> Image.Image:
    """``image`` (its first frame) turned upright by its EXIF orientation, in RGB, or
    RGBA when it has transparency: ready to be written anew, without metadata."""
    frame = ImageOps.exif_transpose(image)
    return frame.convert("RGBA" if frame.mode in ("RGBA", "LA", "P", "PA") else "RGB")


def _webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


def thumbnail_webp(image: Image.Image, *, side: int = THUMBNAIL_SIDE) -> bytes:
    """A WebP of ``image`` (its first frame) whose longest side is at most ``side``,
    upright (EXIF orientation applied), without metadata."""
    frame = _upright(image)
    frame.thumbnail((side, side), Image.Resampling.LANCZOS)
    return _webp(frame, quality=80)


def image_thumbnail(fileobj: IO[bytes]) -> bytes:
    """The thumbnail of an image already accepted by ``decode_image`` (a GIF's poster
    is its first frame). The file's position is left where it was."""
    start = fileobj.tell()
    try:
        with Image.open(fileobj, formats=list(IMAGE_TYPES)) as image:
            return thumbnail_webp(image)
    finally:
        fileobj.seek(start)


@dataclass(frozen=True)
class DecodedVideo:
    content_type: str
    extension: str
    size: tuple[int, int]
    duration: float | None
    poster: Image.Image


def decode_video(fileobj: IO[bytes]) -> DecodedVideo:
    """An MP4 or WebM (by its magic bytes) whose first video frame decodes within
    MAX_IMAGE_PIXELS; that frame is the poster. Anything else: ``ImageRejected``."""
    import av  # PyAV (FFmpeg): imported where video is decoded, not by every process

    start = fileobj.tell()
    try:
        content_type = _video_type(fileobj.read(64))
        if content_type is None:
            raise ImageRejected("not_a_video", "The file is not an MP4 or WebM video.")
        fileobj.seek(start)
        try:
            with av.open(fileobj, mode="r") as container:
                if not container.streams.video:
                    raise ImageRejected("not_a_video", "The file has no video stream.")
                stream = container.streams.video[0]
                check_pixels(stream.codec_context.width, stream.codec_context.height)
                frame = next(container.decode(stream), None)
                if frame is None:
                    raise _truncated()
                check_pixels(frame.width, frame.height)
                duration = float(container.duration / av.time_base) if container.duration else None
                return DecodedVideo(
                    content_type, extension_for(content_type), (frame.width, frame.height), duration, frame.to_image()
                )
        except (av.FFmpegError, *_DECODE_ERRORS) as exc:
            raise _truncated() from exc
    finally:
        fileobj.seek(start)


AVATAR_SIDE = 256  # px: avatars are squares this big


def avatar_webp(fileobj: IO[bytes], *, side: int = AVATAR_SIDE) -> bytes:
    """An uploaded avatar as a clean ``side``×``side`` WebP: decoded by
    ``decode_image``'s rules (``ImageRejected`` otherwise), turned upright, cropped to
    its centre square and scaled; no metadata survives (EXIF, GPS)."""
    decode_image(fileobj)
    start = fileobj.tell()
    try:
        with Image.open(fileobj, formats=list(IMAGE_TYPES)) as image:
            return _webp(ImageOps.fit(_upright(image), (side, side), Image.Resampling.LANCZOS), quality=85)
    finally:
        fileobj.seek(start)
