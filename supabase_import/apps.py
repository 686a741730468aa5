from django.apps import AppConfig


class SupabaseImportConfig(AppConfig):
    """Moving over from the original Supabase project (``manage.py import_supabase``):
    it writes identities, profiles, credits, projects, style stacks and generations, so it
    lives above the domain apps, as demo and health do."""

    name = "supabase_import"
    verbose_name = "Supabase import"
