from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Development data (``manage.py seed_demo``): people, projects, style stacks and
    generations made through every domain app's services, so it lives above them."""

    name = "demo"
    verbose_name = "Demo data"
