from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from generations import catalog, services
        from generations.models import AIModel, Generation

        post_save.connect(catalog.forget, sender=AIModel, dispatch_uid="generations.catalog.saved")
        post_delete.connect(catalog.forget, sender=AIModel, dispatch_uid="generations.catalog.deleted")
        post_delete.connect(services.generation_deleted, sender=Generation, dispatch_uid="generations.files")
