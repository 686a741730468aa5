"""The active models of the catalog, as POST generations reads them: kept in the process
for ``AI_MODEL_CACHE_SECONDS``.

Every creation needs its model's limits, flags and parameter schema before it calls
``public.generation_create``; reading the row each time was a round trip and an ORM
query on the hottest write of the API (make bench). The catalog is small, the same for
every signed-in person (its policy shows the active rows to all) and changes when staff
edit it, so each process keeps what it read for a few seconds:

- a save or delete through Django (the admin, ``manage.py``) empties this process's copy
  at once; other processes see the change within ``AI_MODEL_CACHE_SECONDS``;
- what must never be stale is checked again by the database function in the same
  transaction as the charge: that the model is active, its cost, its prompt limit. A
  model retired a moment ago is still refused (a 400 on ``ai_model``), and the price
  charged is always the stored one;
- ``AI_MODEL_CACHE_SECONDS=0`` reads the row on every request.
"""

from __future__ import annotations

import time

from django.conf import settings

from generations.models import AIModel
from velro.rows import fetch_instance

_SQL = "SELECT * FROM public.ai_models WHERE id = %s AND is_active"
_kept: dict[str, tuple[float, AIModel]] = {}


def active_model(model_id: str) -> AIModel | None:
    """The active model ``model_id``, or None if there is none (or it is retired)."""
    now = time.monotonic()
    kept = _kept.get(model_id)
    if kept is not None and now - kept[0] < settings.AI_MODEL_CACHE_SECONDS:
        return kept[1]
    model = fetch_instance(AIModel, _SQL, [model_id])
    if model is None:
        _kept.pop(model_id, None)
    elif settings.AI_MODEL_CACHE_SECONDS > 0:
        _kept[model_id] = (now, model)
    return model


def forget(**kwargs) -> None:
    """Empty this process's copy (connected to AIModel's post_save and post_delete)."""
    _kept.clear()
