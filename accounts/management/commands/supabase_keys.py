"""``manage.py supabase_keys``: the URL and keys a Supabase client is made with."""

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.apikeys import api_key


class Command(BaseCommand):
    help = (
        "Print SUPABASE_URL, the anon key and the service_role key of this deployment, as "
        "supabase-js / supabase-py take them (createClient(url, key)). The keys are JWTs signed "
        "with JWT_SIGNING_KEY (else SECRET_KEY): the same secret always gives the same keys. "
        "The anon key goes into front ends; the service_role key is a secret (admin API)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", help="the public base URL (default: SUPABASE_URL, else http://127.0.0.1:8000)")

    def handle(self, *args, url=None, **options):
        base = (url or settings.SUPABASE_URL or "http://127.0.0.1:8000").rstrip("/")
        self.stdout.write(f"SUPABASE_URL={base}")
        self.stdout.write(f"SUPABASE_ANON_KEY={api_key('anon')}")
        self.stdout.write(f"SUPABASE_SERVICE_ROLE_KEY={api_key('service_role')}")
