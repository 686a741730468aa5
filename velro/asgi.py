"""The ASGI application, served by ``manage.py run_events`` (uvicorn) for the one async
path, GET /api/v1/generations/events; everything else is served by gunicorn's sync
workers (velro.wsgi), which is where the reverse proxy sends it (README, Deploy)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "velro.settings")
application = get_asgi_application()
