from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.views import CheckoutView, CreditPackViewSet, OrderViewSet, PlanViewSet, PortalView
from billing.webhooks import StripeWebhookView

router = SimpleRouter(trailing_slash=False)
router.register("billing/packs", CreditPackViewSet, basename="billing-pack")
router.register("billing/plans", PlanViewSet, basename="billing-plan")
router.register("billing/orders", OrderViewSet, basename="billing-order")

urlpatterns = [
    path("billing/checkout", CheckoutView.as_view(), name="billing-checkout"),
    path("billing/portal", PortalView.as_view(), name="billing-portal"),
    path("billing/stripe/webhook", StripeWebhookView.as_view(), name="stripe-webhook"),
    *router.urls,
]
