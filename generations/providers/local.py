"""The local provider: renders real files with Pillow, no network, no keys.

An image is a PNG of the requested size whose colours and shapes follow from the
prompt, seed and output index (the same request renders the same picture); a video is
a short animated GIF at the requested aspect ratio, one frame per 1/8 s (capped).
An output carries the file's bytes (``content``): the worker stores them with the
rest (generations/outputs.py). Nothing bigger than
MAX_IMAGE_PIXELS is rendered (velro/media.py): such a request fails, refunded. Reference
images are not read here.
"""

import hashlib
import io
import random
import textwrap

from PIL import Image, ImageDraw

from generations.providers.base import ProviderError, ProviderResult
from velro.media import ImageRejected, check_pixels

VIDEO_SIZES = {"16:9": (320, 180), "9:16": (180, 320), "1:1": (240, 240)}
VIDEO_FPS = 8
MAX_VIDEO_FRAMES = 48


class LocalProvider:
    name = "local"

    def run(self, generation) -> ProviderResult:
        params = generation.parameters or {}
        seed = params.get("seed", 0)
        try:
            if generation.ai_model.kind == "video":
                outputs = [self._video(generation, seed, params)]
            else:
                count = max(1, min(int(params.get("num_images", 1)), 4))
                outputs = [self._image(generation, seed, params, i) for i in range(count)]
        except ImageRejected as exc:  # more pixels than MAX_IMAGE_PIXELS: not allocated
            raise ProviderError(f"Local rendering refused: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise ProviderError(f"Local rendering failed: {exc}") from exc
        return ProviderResult(outputs=outputs, provider_request_id=f"local-{generation.pk}")

    def _rng(self, generation, seed, index) -> random.Random:
        digest = hashlib.sha256(f"{generation.provider_prompt}|{seed}|{index}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _image(self, generation, seed, params, index) -> dict:
        width, height = int(params.get("width", 1024)), int(params.get("height", 1024))
        check_pixels(width, height)  # the same limit as every image the app decodes
        rng = self._rng(generation, seed, index)
        top, bottom = _colour(rng), _colour(rng)
        image = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(image)
        for y in range(height):  # vertical gradient
            t = y / max(height - 1, 1)
            draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
        for _ in range(rng.randint(3, 9)):
            x, y, r = (
                rng.randrange(width),
                rng.randrange(height),
                rng.randint(min(width, height) // 20, min(width, height) // 4),
            )
            draw.ellipse([x - r, y - r, x + r, y + r], outline=_colour(rng), width=max(2, r // 10))
        text = "\n".join(textwrap.wrap(generation.provider_prompt, width=max(20, width // 12))[:6])
        draw.multiline_text((16, 16), text, fill=(255, 255, 255))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return self._output(generation, index, "png", buffer.getvalue(), "image/png", width, height)

    def _video(self, generation, seed, params) -> dict:
        width, height = VIDEO_SIZES.get(params.get("aspect_ratio", "16:9"), VIDEO_SIZES["16:9"])
        duration = int(params.get("duration", 5))
        frames_count = max(2, min(duration * VIDEO_FPS, MAX_VIDEO_FRAMES))
        check_pixels(width, height, frames=frames_count)
        rng = self._rng(generation, seed, 0)
        background, ball = _colour(rng), _colour(rng)
        frames = []
        for i in range(frames_count):
            frame = Image.new("RGB", (width, height), background)
            draw = ImageDraw.Draw(frame)
            x = int((width - 40) * i / (frames_count - 1)) + 20
            draw.ellipse([x - 16, height // 2 - 16, x + 16, height // 2 + 16], fill=ball)
            draw.text((8, 8), generation.provider_prompt[:40], fill=(255, 255, 255))
            frames.append(frame)
        buffer = io.BytesIO()
        frames[0].save(
            buffer, format="GIF", save_all=True, append_images=frames[1:], duration=1000 // VIDEO_FPS, loop=0
        )
        output = self._output(generation, 0, "gif", buffer.getvalue(), "image/gif", width, height)
        output["duration"] = duration
        return output

    def _output(self, generation, index, ext, data, mime, width, height) -> dict:
        # The worker stores the bytes (generations/outputs.py), as it does a provider's URL.
        return {
            "content": data,
            "mime_type": mime,
            "width": width,
            "height": height,
            "size": len(data),
        }


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(256), rng.randrange(256), rng.randrange(256)
