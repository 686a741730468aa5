from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from velro import embedded_db


class Command(BaseCommand):
    help = "Show or stop the embedded PostgreSQL server (used when DATABASE_URL is not set)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "stop", "url"])

    def handle(self, *args, action, **options):
        if not settings.EMBEDDED_DB:
            raise CommandError("DATABASE_URL is set: this project is not using the embedded server.")
        db = settings.DATABASES["default"]
        if action == "url":
            self.stdout.write(f"postgres://{db['USER']}@/{db['NAME']}?host={db['HOST']}")
        elif action == "status":
            with connection.cursor() as cursor:
                cursor.execute("SELECT version()")
                (version,) = cursor.fetchone()
            self.stdout.write(f"running: {version.split(' on ')[0]}, socket in {db['HOST']}")
            self.stdout.write(f"data:    {settings.VELRO_DATA_DIR / 'pg'}")
        else:
            connection.close()
            stopped = embedded_db.stop(settings.VELRO_DATA_DIR)
            self.stdout.write("stopped" if stopped else "was not running")
