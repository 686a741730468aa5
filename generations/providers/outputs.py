"""Turning a provider's result payload (fal's shape) into our outputs list."""

from generations.providers.base import ProviderError

VIDEO_SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}


def outputs_from_payload(generation, payload) -> list[dict]:
    """``{"images": [{url, width, height, content_type}]}`` or ``{"video": {url, …}}`` →
    ``[{url, mime_type, width, height, duration?, size?}]``. Raises ProviderError on a
    malformed payload."""
    if not isinstance(payload, dict):
        raise ProviderError("The result is not a JSON object.")
    params = generation.parameters or {}
    if generation.ai_model.kind == "video":
        video = payload.get("video")
        if not isinstance(video, dict) or not isinstance(video.get("url"), str) or not video["url"]:
            raise ProviderError("The result has no video URL.")
        width, height = VIDEO_SIZES.get(params.get("aspect_ratio", "16:9"), VIDEO_SIZES["16:9"])
        output = {
            "url": video["url"],
            "mime_type": video.get("content_type") or "video/mp4",
            "width": _int(video.get("width"), width),
            "height": _int(video.get("height"), height),
            "duration": _int(params.get("duration"), 5),
        }
        if isinstance(video.get("file_size"), int):
            output["size"] = video["file_size"]
        return [output]
    images = payload.get("images")
    if not isinstance(images, list) or not images:
        raise ProviderError("The result has no images.")
    outputs = []
    for image in images:
        if not isinstance(image, dict) or not isinstance(image.get("url"), str) or not image["url"]:
            raise ProviderError("An image in the result has no URL.")
        outputs.append(
            {
                "url": image["url"],
                "mime_type": image.get("content_type") or "image/jpeg",
                "width": _int(image.get("width"), params.get("width", 1024)),
                "height": _int(image.get("height"), params.get("height", 1024)),
            }
        )
    return outputs


def _int(value, default):
    return value if isinstance(value, int) and not isinstance(value, bool) else default
