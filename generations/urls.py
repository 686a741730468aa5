from django.urls import path
from rest_framework.routers import SimpleRouter

from generations.views import AIModelViewSet, GenerationViewSet
from generations.webhooks import ProviderWebhookView

router = SimpleRouter(trailing_slash=False)
router.register("models", AIModelViewSet, basename="ai-model")
router.register("generations", GenerationViewSet, basename="generation")

urlpatterns = [
    path("webhooks/<slug:provider>", ProviderWebhookView.as_view(), name="provider-webhook"),
    *router.urls,
]
