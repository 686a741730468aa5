from dataclasses import dataclass, field
from typing import Protocol


class ProviderError(Exception):
    """The provider could not produce outputs: the generation fails and is refunded.

    ``retryable``: the same call may succeed later (a connection error, a 5xx, a 429,
    whose ``Retry-After`` is ``retry_after`` seconds). The worker tries a submit again
    only when the provider cannot have queued it (generations/inflight.py), up to
    GENERATION_MAX_ATTEMPTS; a job that may be queued or running is never resubmitted.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        provider_request_id: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.provider_request_id = provider_request_id
        self.retry_after = retry_after


@dataclass
class ProviderResult:
    """What a provider produced. Each output is
    ``{"url", "mime_type", "width", "height", "duration"?, "size"?}``."""

    outputs: list[dict] = field(default_factory=list)
    provider_request_id: str = ""


class Provider(Protocol):
    name: str

    def run(self, generation) -> ProviderResult:
        """Produce the outputs for ``generation`` (blocking) or raise ProviderError."""
        ...
