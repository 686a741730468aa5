from django.urls import path
from rest_framework.routers import SimpleRouter

from generations.fal_webhooks import FalWebhookView
from generations.views import AIModelViewSet, GenerationViewSet
from generations.webhooks import ProviderWebhookView

router = SimpleRouter(trailing_slash=False)
router.register("models", AIModelViewSet, basename="ai-model")
router.register("generations", GenerationViewSet, basename="generation")

urlpatterns = [
    # fal's own signature scheme (before the generic pattern, which would take "fal").
    path("webhooks/fal", FalWebhookView.as_view(), name="fal-webhook"),
    path("webhooks/<slug:provider>", ProviderWebhookView.as_view(), name="provider-webhook"),
    *router.urls,
]
