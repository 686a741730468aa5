from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from staffauth.limits import FailedSignIns


class StaffAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, with the failed sign-in limits (staffauth/limits.py).

    Over a limit the form is refused before the password is checked — a right password
    too — with the error code ``rate_limited`` (the view answers 429)."""

    refusal = None

    def clean(self):
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not (email and password):
            return super().clean()  # the field errors ("This field is required.")
        attempt = FailedSignIns(self.request, email)
        self.refusal = attempt.reserve()
        if self.refusal is not None:
            raise ValidationError(self.refusal.message, code="rate_limited")
        cleaned = super().clean()  # a wrong password raises: its place stays counted
        attempt.release()
        return cleaned


class CodeForm(forms.Form):
    """A second-factor code: six digits from the authenticator app, or a recovery code."""

    otp_token = forms.CharField(
        label="Code",
        max_length=32,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false", "size": 12}
        ),
    )
