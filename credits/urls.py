from django.urls import path
from rest_framework.routers import SimpleRouter

from credits.views import BalanceView, CreditTransactionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("credits/transactions", CreditTransactionViewSet, basename="credit-transaction")

urlpatterns = [path("credits/balance", BalanceView.as_view(), name="credit-balance"), *router.urls]
