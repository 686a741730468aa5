from dataclasses import dataclass, field
from typing import Protocol


class ProviderError(Exception):
    """The provider could not produce outputs: the generation fails and is refunded.

    ``retryable`` is informative (logged); the worker never resubmits by itself, since a
    timed-out job may still be running at the provider (and be charged there).
    """

    def __init__(self, message: str, *, retryable: bool = False, provider_request_id: str = ""):
        super().__init__(message)
        self.retryable = retryable
        self.provider_request_id = provider_request_id


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
