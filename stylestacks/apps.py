from django.apps import AppConfig


class StylestacksConfig(AppConfig):
    name = "stylestacks"
    verbose_name = "Style stacks"
    default_auto_field = "django.db.models.BigAutoField"
