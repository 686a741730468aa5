"""The admin's sign-in pages: the login (password, limited), the second-factor step, the
enrolment of an authenticator app and the page to manage it (README, "Staff sign-in").

The views that check a secret are ``non_atomic_requests``: their failure counters are
committed as they are written (staffauth/limits.py), and their own writes run in
transactions of their own (services).
"""

import django_otp
from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_static.models import StaticDevice

from staffauth import services
from staffauth.forms import CodeForm, StaffAuthenticationForm
from staffauth.limits import FailedSignIns

RATE_LIMITED = "rate_limited"


class StaffLoginView(LoginView):
    """Django's LoginView with the limited form: over a limit, 429 and Retry-After."""

    authentication_form = StaffAuthenticationForm
    template_name = "admin/login.html"

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, RATE_LIMITED):
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.wait)
        return response

    @method_decorator(transaction.atomic)
    def form_valid(self, form):
        # Signing in writes last_sign_in_at and the session: one transaction.
        return super().form_valid(form)


@transaction.non_atomic_requests
@sensitive_post_parameters()
@never_cache
def admin_login(request):
    """/admin/login/ in place of the admin site's own: the same page and context, with
    the limited form. The second-factor step comes after it (the middleware sends a
    staff member with an authenticator to verify_view)."""
    site = admin.site
    if request.method == "GET" and site.has_permission(request):
        return redirect("admin:index")
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index")
    request.current_app = site.name
    return StaffLoginView.as_view(extra_context=context)(request)


def _next_url(request) -> str:
    """Where to go after this step: ``next`` when it is a path on this site, else the
    admin's index."""
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return reverse("admin:index")


def _page(request, template: str, title: str, status: int = 200, **context):
    return TemplateResponse(
        request,
        template,
        {**admin.site.each_context(request), "title": title, "next": _next_url(request), **context},
        status=status,
    )


def _checked_code(request, form: CodeForm):
    """The device that accepts the form's code for the signed-in user, counted by the
    failed sign-in limits; None after adding the error to the form (a wrong code, or
    a limit reached: then ``form.refusal`` is set)."""
    form.refusal = None
    if not form.is_valid():
        return None
    attempt = FailedSignIns(request, request.user.email)
    form.refusal = attempt.reserve()
    if form.refusal is not None:
        form.add_error(None, form.refusal.message)
        return None
    device = services.code_check(request.user, form.cleaned_data["otp_token"])
    if device is None:
        form.add_error("otp_token", "That code is not right. Enter the current code from your app, or a recovery code.")
        return None
    attempt.release()
    return device


def _status(form: CodeForm) -> int:
    return 429 if getattr(form, "refusal", None) is not None else 200


@transaction.non_atomic_requests
@sensitive_post_parameters("otp_token")
def verify_view(request):
    """/admin/2fa/verify/: the second step of signing in, for staff with an authenticator
    app: a code from it, or a recovery code (used up)."""
    user = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    if services.authenticator_get(user) is None:
        # Nothing to verify with: enrolment when it is required, else on.
        if services.two_factor_required(user):
            return redirect(f"{reverse('staffauth:enrol')}?{urlencode({REDIRECT_FIELD_NAME: _next_url(request)})}")
        return redirect(_next_url(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        device = _checked_code(request, form)
        if device is not None:
            # A new session key for the raised privilege, as login() gives one.
            request.session.cycle_key()
            django_otp.login(request, device)
            if isinstance(device, StaticDevice):
                left = services.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. New ones: Two-factor sign-in, "
                    "Regenerate recovery codes.",
                )
            return redirect(_next_url(request))
    return _page(request, "staffauth/verify.html", "Two-factor sign-in", status=_status(form), form=form)


@sensitive_post_parameters("otp_token")
def enrol_view(request):
    """/admin/2fa/enrol/: set up an authenticator app — a QR code of its otpauth:// URI
    and the secret as text, confirmed with a code from the app. Confirming shows the
    recovery codes once."""
    user = request.user
    if services.authenticator_get(user) is not None:
        messages.info(request, "Two-factor sign-in is on. Turn it off here first to enrol another app.")
        return redirect("staffauth:manage")
    device = services.enrolment_start(user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        codes = services.enrolment_confirm(device, form.cleaned_data["otp_token"])
        if codes is not None:
            device.refresh_from_db()
            request.session.cycle_key()
            django_otp.login(request, device)
            return _page(request, "staffauth/recovery_codes.html", "Two-factor sign-in is on", codes=codes)
        form.add_error("otp_token", "That code is not right. Enter the six digits your app shows now.")
    return _page(
        request,
        "staffauth/enrol.html",
        "Set up two-factor sign-in",
        form=form,
        secret=services.enrolment_secret(device),
        qr_svg=services.enrolment_qr_svg(device),
        required=services.two_factor_required(user),
    )


@transaction.non_atomic_requests
@sensitive_post_parameters("otp_token")
def manage_view(request):
    """/admin/2fa/: whether two-factor sign-in is on; with a current code, regenerate the
    recovery codes or turn it off (then, when it is required, enrol again)."""
    user = request.user
    authenticator = services.authenticator_get(user)
    form = CodeForm(request.POST if request.method == "POST" else None)
    action = request.POST.get("action")
    if request.method == "POST" and authenticator is not None and action in ("regenerate", "disable"):
        if _checked_code(request, form) is not None:
            if action == "regenerate":
                codes = services.recovery_codes_regenerate(user)
                return _page(request, "staffauth/recovery_codes.html", "New recovery codes", codes=codes)
            services.two_factor_remove(user)
            messages.success(request, "Two-factor sign-in is off.")
            if services.two_factor_required(user):
                return redirect("staffauth:enrol")
            return redirect("staffauth:manage")
    return _page(
        request,
        "staffauth/manage.html",
        "Two-factor sign-in",
        status=_status(form),
        form=form,
        authenticator=authenticator,
        codes_left=services.recovery_codes_left(user),
        required=services.two_factor_required(user),
    )
