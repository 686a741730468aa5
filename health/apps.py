from django.apps import AppConfig


class HealthConfig(AppConfig):
    """The database health report (``manage.py dbhealth``, the admin page, ``/api/v1/health``):
    it counts and inspects every domain app's tables, so it lives above them."""

    name = "health"
    verbose_name = "Health"
