from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The performance benchmark (``manage.py bench``, ``make bench``): data sets, the
    runner, the locust load and the psycopg-only baseline. It drives every domain app, so
    it lives above them; results.json beside it is the latest full run."""

    name = "bench"
    verbose_name = "Benchmark"
