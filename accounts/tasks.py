"""Background work of accounts, run by procrastinate's worker (velro/tasks.py)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from procrastinate.contrib.django import app

from accounts.models import FlowState, OneTimeToken, Session

# A PKCE flow not finished within a day is abandoned (its code lives 5 minutes).
FLOW_STATE_MAX_AGE = timedelta(days=1)


@app.periodic(cron="17 * * * *")  # hourly
@app.task(queueing_lock="purge_expired_sign_ins")
def purge_expired_sign_ins(timestamp: int) -> dict:
    """Delete what can no longer sign anyone in: sessions unused for longer than the
    refresh-token lifetime (their tokens go with them), emailed tokens past
    ``MAILER_OTP_EXP`` and abandoned PKCE flows. Only housekeeping: each is refused when
    presented anyway. Safe to run twice."""
    now = timezone.now()
    idle = now - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    sessions, _ = Session.objects.filter(
        Q(refreshed_at__lt=idle) | Q(refreshed_at__isnull=True, created_at__lt=idle)
    ).delete()
    tokens, _ = OneTimeToken.objects.filter(created_at__lt=now - timedelta(seconds=settings.MAILER_OTP_EXP)).delete()
    flows, _ = FlowState.objects.filter(created_at__lt=now - FLOW_STATE_MAX_AGE).delete()
    return {"sessions": sessions, "one_time_tokens": tokens, "flow_states": flows}
