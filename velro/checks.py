"""Deployment rules as Django system checks: they fail `manage.py check` (and every
command that runs checks) instead of letting the app run without its safety net."""

from django.conf import settings
from django.core.checks import Error, register
from django.db import connections


@register("velro")
def check_database(app_configs, **kwargs):
    errors = []
    for alias, db in settings.DATABASES.items():
        if connections[alias].vendor != "postgresql":
            errors.append(
                Error(
                    f"Database '{alias}' must be PostgreSQL: Row Level Security and triggers are the design.",
                    id="velro.E001",
                )
            )
        if not db.get("ATOMIC_REQUESTS"):
            errors.append(
                Error(
                    f"Database '{alias}' must have ATOMIC_REQUESTS on: the RLS role switch is transaction-local.",
                    id="velro.E002",
                )
            )
    return errors
