from django.apps import AppConfig


class VelroConfig(AppConfig):
    name = "velro"
    verbose_name = "Velro"

    def ready(self):
        from velro import checks  # noqa: F401  (registers the system checks)
