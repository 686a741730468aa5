import io

import pytest
from PIL import Image

from generations.models import AIModel
from generations.services import generation_create

FLUX = "fal-ai/flux/dev"  # image, 25 credits, negative prompts, references, max 1000 chars
VEO = "fal-ai/veo3"  # video, 500 credits


def make(user, model=FLUX, **kwargs):
    """A generation made as the API makes it (generation_create: charged, pending)."""
    kwargs.setdefault("prompt", "a lighthouse at dusk")
    return generation_create(user=user, ai_model=AIModel.objects.get(pk=model), **kwargs)


@pytest.fixture
def flux(db):
    return AIModel.objects.get(pk=FLUX)


@pytest.fixture
def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
