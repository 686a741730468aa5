"""The events process: ``GET /api/v1/generations/events`` (Server-Sent Events) under
uvicorn, beside gunicorn's sync workers that serve the rest of the API.

An open stream is an asyncio task and a queue here, not a worker: one process holds
hundreds of streams on two database connections (generations/events.py). The reverse
proxy routes only the stream's path here (README, Deploy; ``make serve`` and Docker
Compose start it on EVENTS_PORT). More processes (on other ports or machines) for more
cores: each listens for itself.

SIGTERM/SIGINT: stop accepting connections, end every open stream with an
``event: close`` (clients reconnect, to another process, with ``Last-Event-ID``), then
exit; streams still open after ``--graceful-timeout`` seconds are cut.
"""

import uvicorn
from django.core.management.base import BaseCommand

from generations import events


class EventsServer(uvicorn.Server):
    """uvicorn's server that ends the open streams first when told to stop: otherwise it
    would wait for endless responses to finish until its graceful timeout."""

    async def shutdown(self, sockets=None):
        events.close_streams()
        await super().shutdown(sockets=sockets)


class Command(BaseCommand):
    help = "Serve GET /api/v1/generations/events (Server-Sent Events) under uvicorn."

    def add_arguments(self, parser):
        from django.conf import settings

        parser.add_argument("--host", default=settings.EVENTS_HOST, help="bind address (EVENTS_HOST)")
        parser.add_argument("--port", type=int, default=settings.EVENTS_PORT, help="port (EVENTS_PORT)")
        parser.add_argument(
            "--graceful-timeout", type=float, default=10.0, help="seconds streams get to end on shutdown"
        )

    def handle(self, *args, host, port, graceful_timeout, **options):
        from django.conf import settings

        from velro.asgi import application

        config = uvicorn.Config(
            application,
            host=host,
            port=port,
            lifespan="off",  # Django has no lifespan handler
            log_config=None,  # Django's LOGGING (json or plain, with request ids) already applies
            proxy_headers=True,
            forwarded_allow_ips=settings.FORWARDED_ALLOW_IPS,
            timeout_graceful_shutdown=graceful_timeout,
            backlog=4096,  # a burst of reconnects after a deploy
        )
        self.stdout.write(f"Serving generation events on http://{host}:{port}/api/v1/generations/events")
        EventsServer(config).run()
