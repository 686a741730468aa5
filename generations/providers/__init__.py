"""AI providers behind one small interface.

A provider turns a generation into output files (``run``) or raises ``ProviderError``.
Which one runs is decided per model (``AIModel.provider``) when ``GENERATION_PROVIDER``
is ``model``; with the default ``local`` every model renders locally, so the product
works end to end with no network and no keys.
"""

from django.conf import settings

from generations.providers.base import Provider, ProviderError, ProviderResult

__all__ = ["Provider", "ProviderError", "ProviderResult", "get_provider", "provider_named"]


def get_provider(ai_model) -> Provider:
    name = ai_model.provider if settings.GENERATION_PROVIDER == "model" else settings.GENERATION_PROVIDER
    return provider_named(name, model=ai_model.pk)


def provider_named(name: str, *, model: str = "") -> Provider:
    if name == "local":
        from generations.providers.local import LocalProvider

        return LocalProvider()
    if name == "fal":
        from generations.providers.fal import FalProvider

        return FalProvider.from_settings()
    raise ProviderError(f"Unknown provider {name!r}" + (f" for model {model}." if model else "."))
