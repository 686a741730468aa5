"""The fal.ai provider: runs a generation through fal's queue REST API.

1. submit ``POST {FAL_QUEUE_URL}/{model id}`` with the model input as JSON and the header
   ``Authorization: Key <FAL_KEY>``; the reply names ``request_id``, ``status_url`` and
   ``response_url`` (status and result live under the app id, e.g. ``fal-ai/flux`` for
   ``fal-ai/flux/dev``, which is the fallback when the reply lacks the URLs).
2. poll ``GET status_url`` every ``poll_interval`` s while ``status`` is ``IN_QUEUE`` or
   ``IN_PROGRESS``, until ``COMPLETED``; ``FAL_TIMEOUT`` s after the start it gives up.
3. fetch ``GET response_url``: ``{"images": [...]}`` for image models, ``{"video": {...}}``
   for video models, turned into ``ProviderResult`` outputs (the files stay on fal's CDN).

Each HTTP call retries connection errors, timeouts, 429 and 5xx with exponential backoff.
A submit is resent only when fal cannot have queued it (no connection, or an error
status), so a job is never queued and charged twice; other 4xx fail at once. The key is
sent only to the configured queue host and never appears in errors or logs.
"""

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings

from generations.providers.base import ProviderError, ProviderResult

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_URL = "https://queue.fal.run"
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
RETRY_STATUSES = {429, 500, 502, 503, 504}
# Transport errors raised before the request left: resending a submit is then safe.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
PENDING_STATUSES = {"IN_QUEUE", "IN_PROGRESS"}
IMAGE_PARAMETERS = ("num_images", "seed", "guidance_scale", "num_inference_steps", "safety_tolerance")
VIDEO_PARAMETERS = ("aspect_ratio", "seed")
VIDEO_SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}
BACKOFF_BASE, BACKOFF_MAX = 0.5, 8.0
EXCERPT_LENGTH = 200


@dataclass
class Submission:
    """What a submit returned: fal's request id and its queue URLs (status, response, cancel)."""

    request_id: str
    urls: dict


class FalProvider:
    name = "fal"
    releases = True  # submit and release: the worker does not wait for the result

    def __init__(
        self,
        *,
        key: str,
        base_url: str,
        timeout: float,
        poll_interval: float = 1.0,
        client: httpx.Client | None = None,
        max_retries: int = 3,
        connections: int = 100,
    ):
        self._key = key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_retries = max_retries
        self._client = client
        self.connections = connections
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls) -> "FalProvider":
        return cls(
            key=getattr(settings, "FAL_KEY", "") or "",
            base_url=getattr(settings, "FAL_QUEUE_URL", "") or DEFAULT_QUEUE_URL,
            timeout=float(getattr(settings, "FAL_TIMEOUT", 300.0)),
        )

    def run(self, generation) -> ProviderResult:
        if not self._key:
            raise ProviderError("FAL_KEY is not configured.")
        client = self._client or httpx.Client(timeout=HTTP_TIMEOUT)
        try:
            return self._run(client, generation)
        except ProviderError as exc:
            logger.warning(
                "fal failed: generation=%s model=%s request=%s retryable=%s: %s",
                generation.pk,
                generation.ai_model.pk,
                exc.provider_request_id or "-",
                exc.retryable,
                exc,
            )
            raise
        finally:
            if client is not self._client:
                client.close()

    def _run(self, client: httpx.Client, generation) -> ProviderResult:
        deadline = time.monotonic() + self.timeout
        model_id = generation.ai_model.pk
        submitted = self._json(
            client, "POST", f"{self.base_url}/{model_id}", "submit", json=build_input(generation), deadline=deadline
        )
        request_id = submitted.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise ProviderError("fal.ai accepted the submit but returned no request_id.")
        fallback = f"{self.base_url}/{app_id(model_id)}/requests/{request_id}"
        status_url = self._queue_url(submitted.get("status_url"), f"{fallback}/status", request_id)
        response_url = self._queue_url(submitted.get("response_url"), fallback, request_id)
        logger.info("fal submitted: generation=%s model=%s request=%s", generation.pk, model_id, request_id)

        self._wait(client, status_url, request_id, deadline)
        result = self._json(client, "GET", response_url, "result", request_id=request_id, deadline=deadline)
        outputs = parse_outputs(generation.ai_model.kind, result, generation.parameters or {}, request_id)
        logger.info("fal completed: generation=%s request=%s outputs=%d", generation.pk, request_id, len(outputs))
        return ProviderResult(outputs=outputs, provider_request_id=request_id)

    def _wait(self, client: httpx.Client, status_url: str, request_id: str, deadline: float) -> None:
        while True:
            status = self._json(client, "GET", status_url, "status", request_id=request_id, deadline=deadline)
            state = status.get("status")
            if state == "COMPLETED":
                if status.get("error"):
                    raise ProviderError(
                        f"fal.ai request {request_id} failed: {self._excerpt(str(status['error']))}",
                        provider_request_id=request_id,
                    )
                return
            if not isinstance(state, str) or state not in PENDING_STATUSES:
                raise ProviderError(
                    f"fal.ai returned an unexpected status {self._excerpt(repr(state))} for request {request_id}.",
                    provider_request_id=request_id,
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProviderError(
                    f"fal.ai request {request_id} timed out after {self.timeout:g} s (still {state}).",
                    retryable=True,
                    provider_request_id=request_id,
                )
            self._sleep(min(self.poll_interval, remaining))

    def _queue_url(self, url, fallback: str, request_id: str) -> str:
        """The URL fal returned, if it is on the configured queue host (it gets the key)."""
        if url is None or url == "":
            return fallback
        base = urlsplit(self.base_url)
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise ProviderError(
                f"fal.ai returned a queue URL outside {base.scheme}://{base.netloc} for request {request_id}; "
                "refusing to send the API key there.",
                provider_request_id=request_id,
            )
        return url

    def _json(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        what: str,
        *,
        request_id="",
        json=None,
        deadline=None,
        retries: int | None = None,
    ) -> dict:
        response = self._request(
            client, method, url, what, request_id=request_id, json=json, deadline=deadline, retries=retries
        )
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError(
                f"fal.ai {what} response is not valid JSON: {self._excerpt(response.text)}",
                provider_request_id=request_id,
            ) from exc
        if not isinstance(data, dict):
            raise ProviderError(f"fal.ai {what} response is not a JSON object.", provider_request_id=request_id)
        return data

    def _timed_out(self, what: str, request_id: str, problem: str = "") -> ProviderError:
        reason = f"failed ({problem}) and no retry fitted" if problem else "got no answer"
        return ProviderError(
            f"fal.ai {what} {reason} within FAL_TIMEOUT ({self.timeout:g} s); timed out.",
            retryable=True,
            provider_request_id=request_id,
        )

    def _queue_urls(self, submitted: dict, model_id: str, request_id: str) -> dict:
        fallback = f"{self.base_url}/{app_id(model_id)}/requests/{request_id}"
        return {
            "status": self._queue_url(submitted.get("status_url"), f"{fallback}/status", request_id),
            "response": self._queue_url(submitted.get("response_url"), fallback, request_id),
            "cancel": self._queue_url(submitted.get("cancel_url"), f"{fallback}/cancel", request_id),
        }

    # -- submit and release (generations/inflight.py) ----------------------------------
    # One attempt per call, no sleeping: the worker runs these for hundreds of requests
    # at once in a bounded pool and retries per generation, with backoff, by itself.

    def submit(self, generation, *, webhook_url: str = "") -> Submission:
        """Queue ``generation`` at fal (with ``webhook_url``, fal POSTs the result there)."""
        if not self._key:
            raise ProviderError("FAL_KEY is not configured.")
        model_id = generation.ai_model.pk
        url = f"{self.base_url}/{model_id}"
        if webhook_url:
            url += "?" + urlencode({"fal_webhook": webhook_url})
        submitted = self._json(self.client, "POST", url, "submit", json=build_input(generation), retries=0)
        request_id = submitted.get("request_id")
        if not isinstance(request_id, str) or not request_id or len(request_id) > 200:
            raise ProviderError("fal.ai accepted the submit but returned no request_id.")
        return Submission(request_id, self._queue_urls(submitted, model_id, request_id))

    def status(self, generation, *, deadline: float | None = None) -> dict:
        """fal's status of the generation's request, with its logs (``?logs=1``)."""
        request_id = generation.provider_request_id
        url = self._stored_url(generation, "status")
        url += ("&" if "?" in url else "?") + "logs=1"
        return self._json(self.client, "GET", url, "status", request_id=request_id, retries=0, deadline=deadline)

    def result(self, generation, *, deadline: float | None = None) -> dict:
        """The model's output JSON of a completed request."""
        url = self._stored_url(generation, "response")
        return self._json(
            self.client, "GET", url, "result", request_id=generation.provider_request_id, retries=0, deadline=deadline
        )

    def cancel(self, generation) -> tuple[bool, str]:
        """Ask fal to cancel the request: (True, answer) when fal accepted (202, it was
        still queued), (False, answer) when it would not (running or finished)."""
        request_id = generation.provider_request_id
        url = self._stored_url(generation, "cancel")
        headers = {"Authorization": f"Key {self._key}", "Accept": "application/json"}
        try:
            response = self.client.put(url, headers=headers)
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"fal.ai cancel failed: {type(exc).__name__}", retryable=True, provider_request_id=request_id
            ) from exc
        try:
            answer = str((response.json() or {}).get("status") or "")
        except (ValueError, AttributeError):
            answer = ""
        answer = self._excerpt(answer or f"HTTP {response.status_code}")
        if response.status_code == 202 or (response.is_success and answer == "CANCELLATION_REQUESTED"):
            return True, answer or "CANCELLATION_REQUESTED"
        if response.status_code in RETRY_STATUSES:
            raise ProviderError(
                f"fal.ai cancel failed with HTTP {response.status_code}",
                retryable=True,
                provider_request_id=request_id,
                retry_after=retry_after(response),
            )
        return False, answer

    def _stored_url(self, generation, name: str) -> str:
        request_id = generation.provider_request_id
        fallback = f"{self.base_url}/{app_id(generation.ai_model_id)}/requests/{request_id}"
        fallback = {"status": f"{fallback}/status", "cancel": f"{fallback}/cancel"}.get(name, fallback)
        return self._queue_url((generation.provider_urls or {}).get(name), fallback, request_id)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=HTTP_TIMEOUT, limits=httpx.Limits(max_connections=self.connections))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _request(
        self, client: httpx.Client, method: str, url: str, what: str, *, request_id, json, deadline=None, retries=None
    ) -> httpx.Response:
        """One HTTP call with retries, never past ``deadline`` (FAL_TIMEOUT from the start):
        each attempt's timeouts and each backoff are cut to the time that is left.
        ``retries=0``: one attempt (the worker's in-flight calls retry per generation)."""
        headers = {"Authorization": f"Key {self._key}", "Accept": "application/json"}
        problem = ""
        max_retries = self.max_retries if retries is None else retries
        for attempt in range(max_retries + 1):
            last = attempt == max_retries
            timeout = client.timeout
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(what, request_id, problem)
                timeout = httpx.Timeout(
                    min(client.timeout.read or remaining, remaining),
                    connect=min(client.timeout.connect or remaining, remaining),
                )
            try:
                response = client.request(method, url, headers=headers, json=json, timeout=timeout)
            except httpx.TransportError as exc:
                problem = type(exc).__name__
                if method == "POST" and not isinstance(exc, NOT_SENT_ERRORS):
                    raise ProviderError(
                        f"fal.ai {what} failed ({problem}) after the request was sent; it may have been queued, "
                        "so it is not resent.",
                        provider_request_id=request_id,
                    ) from exc
                if last:
                    raise ProviderError(
                        f"fal.ai {what} failed after {attempt + 1} attempt(s): {problem}: {self._excerpt(str(exc))}",
                        retryable=True,
                        provider_request_id=request_id,
                    ) from exc
            else:
                if response.is_success:
                    return response
                if response.status_code not in RETRY_STATUSES or last:
                    raise self._http_error(response, what, request_id, attempt + 1)
                problem = f"HTTP {response.status_code}"
            delay = min(BACKOFF_BASE * 2**attempt, BACKOFF_MAX)
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            logger.warning(
                "fal %s: %s (attempt %d/%d), retrying in %.1f s",
                what,
                problem,
                attempt + 1,
                max_retries + 1,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _http_error(self, response: httpx.Response, what: str, request_id: str, attempts: int) -> ProviderError:
        code = response.status_code
        body = self._excerpt(response.text)
        if code in (401, 403):
            message = f"fal.ai rejected the API key (HTTP {code}) on {what}; check FAL_KEY. {body}"
        else:
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            message = f"fal.ai {what} failed with HTTP {code}{tries}: {body}"
        return ProviderError(
            message.strip(),
            retryable=code in RETRY_STATUSES,
            provider_request_id=request_id,
            retry_after=retry_after(response),
        )

    def _excerpt(self, text: str) -> str:
        """A short one-line excerpt of ``text`` for messages, with the key masked."""
        text = re.sub(r"\s+", " ", text).strip()
        if self._key:
            text = text.replace(self._key, "***")
        return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def retry_after(response: httpx.Response) -> float | None:
    """A 429's or 503's ``Retry-After`` in seconds (a number; an HTTP date is ignored)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0)


PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
STEP = re.compile(r"(\d+)\s*/\s*(\d+)")
STAGES = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "completed"}


def progress_from_status(status: dict) -> dict:
    """The progress kept on a generation from fal's status: the stage, the 0-indexed
    queue position while queued, the last log line, and a percentage when the model's
    logs give one (``45%`` or ``step 9/20``)."""
    state = status.get("status")
    progress: dict = {"stage": STAGES.get(state, "running")}
    position = status.get("queue_position")
    if state == "IN_QUEUE" and isinstance(position, int) and not isinstance(position, bool) and position >= 0:
        progress["queue_position"] = position
    logs = status.get("logs")
    if isinstance(logs, list) and logs:
        messages = [str(line.get("message", ""))[:200] for line in logs if isinstance(line, dict)]
        if messages:
            progress["message"] = messages[-1]
        for message in reversed(messages):
            percent, step = PERCENT.search(message), STEP.search(message)
            if percent:
                progress["percentage"] = min(100, round(float(percent.group(1))))
                break
            if step and 0 < int(step.group(2)) and int(step.group(1)) <= int(step.group(2)):
                progress["percentage"] = round(100 * int(step.group(1)) / int(step.group(2)))
                break
    if state == "COMPLETED":
        progress["percentage"] = 100
    return progress


def metrics_from_status(status: dict) -> dict:
    """What fal reported about the request's cost: ``inference_time`` (seconds) and a
    ``cost`` if one is given (fal's docs name none; kept should it come)."""
    metrics = status.get("metrics")
    found = {}
    if isinstance(metrics, dict):
        for name in ("inference_time", "cost"):
            value = metrics.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                found[name] = float(value)
    return found


def app_id(model_id: str) -> str:
    """``owner/app`` of a model id: ``fal-ai/flux/dev`` → ``fal-ai/flux``."""
    return "/".join(model_id.split("/")[:2])


def build_input(generation) -> dict:
    """The fal input for ``generation``: its prompt plus the parameters fal understands."""
    model = generation.ai_model
    params = generation.parameters or {}
    # The prompt composed with the generation's style, when it has one.
    data: dict = {"prompt": getattr(generation, "adapted_prompt", "") or generation.prompt}
    if model.kind == "video":
        if params.get("duration") is not None:
            seconds = _seconds(params["duration"])
            data["duration"] = f"{seconds:g}" if seconds is not None else str(params["duration"])
        names = VIDEO_PARAMETERS
    else:
        width, height = params.get("width"), params.get("height")
        if width is not None and height is not None:
            try:
                data["image_size"] = {"width": int(width), "height": int(height)}
            except (TypeError, ValueError) as exc:
                raise ProviderError(f"Invalid image size {width!r}x{height!r}.") from exc
        names = IMAGE_PARAMETERS
    data.update({name: params[name] for name in names if params.get(name) is not None})
    if model.supports_negative_prompt and generation.negative_prompt:
        data["negative_prompt"] = generation.negative_prompt
    if model.supports_reference_image and generation.reference_image:
        url = getattr(generation, "reference_image_url", "")
        if url:
            data["image_url"] = url
        else:
            logger.warning("fal: generation=%s has a reference image but no absolute URL; skipped", generation.pk)
    return data


def parse_outputs(kind: str, result: dict, params: dict, request_id: str) -> list[dict]:
    """``ProviderResult`` outputs from fal's result JSON, or ProviderError if malformed."""

    def malformed(problem: str) -> ProviderError:
        return ProviderError(f"fal.ai result for request {request_id} {problem}.", provider_request_id=request_id)

    if kind == "video":
        video = result.get("video")
        if not isinstance(video, dict):
            raise malformed("has no video")
        width, height = VIDEO_SIZES.get(params.get("aspect_ratio"), VIDEO_SIZES["16:9"])
        output = _output(video, "video/mp4", width, height, malformed)
        output["duration"] = _seconds(params.get("duration"))
        return [output]

    images = result.get("images")
    if not isinstance(images, list) or not images:
        raise malformed("has no images")
    size = params.get("width"), params.get("height")
    outputs = []
    for image in images:
        if not isinstance(image, dict):
            raise malformed("has an image that is not an object")
        outputs.append(_output(image, "image/jpeg", *size, malformed))
    return outputs


def _output(file: dict, default_mime: str, width, height, malformed) -> dict:
    url = file.get("url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise malformed("has a file without a valid url")
    width, height = file.get("width", width), file.get("height", height)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height)):
        raise malformed("has a file without a valid width and height")
    mime = file.get("content_type")
    mime = mime if isinstance(mime, str) and mime else default_mime
    output = {"url": url, "mime_type": mime, "width": width, "height": height}
    size = file.get("file_size")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        output["size"] = size
    return output


def _seconds(value) -> int | float | None:
    """``5``, ``"5"``, ``"5s"`` or ``5.0`` → 5; None if it is not a number of seconds."""
    try:
        seconds = float(str(value).strip().removesuffix("s"))
    except ValueError:
        return None
    return int(seconds) if seconds.is_integer() else seconds
