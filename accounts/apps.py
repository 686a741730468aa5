from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete

        from accounts import services
        from accounts.models import Profile

        post_delete.connect(services.profile_deleted, sender=Profile, dispatch_uid="accounts.avatar_file")
