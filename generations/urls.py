from django.db import transaction
from django.urls import path
from rest_framework.routers import SimpleRouter

from generations.event_views import GenerationEventsTokenView, GenerationEventsView
from generations.fal_webhooks import FalWebhookView
from generations.views import AIModelViewSet, GenerationViewSet
from generations.webhooks import ProviderWebhookView

router = SimpleRouter(trailing_slash=False)
router.register("models", AIModelViewSet, basename="ai-model")
router.register("generations", GenerationViewSet, basename="generation")

urlpatterns = [
    # Before the router, whose generations/{pk} would take "events". The stream is async
    # and runs in no request transaction (it reads as the owner through its hub).
    path(
        "generations/events",
        transaction.non_atomic_requests(GenerationEventsView.as_view()),
        name="generation-events",
    ),
    path("generations/events/token", GenerationEventsTokenView.as_view(), name="generation-events-token"),
    # fal's own signature scheme (before the generic pattern, which would take "fal").
    path("webhooks/fal", FalWebhookView.as_view(), name="fal-webhook"),
    path("webhooks/<slug:provider>", ProviderWebhookView.as_view(), name="provider-webhook"),
    *router.urls,
]
