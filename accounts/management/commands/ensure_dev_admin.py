import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User


class Command(BaseCommand):
    help = "DEBUG only: create the development superuser if missing and print its login once."

    def add_arguments(self, parser):
        parser.add_argument("--email", default="admin@velro.local")

    def handle(self, *args, email, **options):
        if not settings.DEBUG:
            raise CommandError("ensure_dev_admin runs only with DEBUG on; use createsuperuser in production.")
        if User.objects.filter(email__iexact=email).exists():
            self.stdout.write(f"Dev admin {email} exists; its password is unchanged.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(email=email, password=password)
        self.stdout.write(self.style.SUCCESS("Created the dev admin for http://127.0.0.1:8000/admin/"))
        self.stdout.write(f"  email:    {email}")
        self.stdout.write(f"  password: {password}")
        self.stdout.write("  (shown once; `manage.py changepassword " + email + "` sets a new one)")
