from django import forms
from django.contrib.auth import forms as auth_forms

from accounts.models import User


class UserCreationForm(auth_forms.BaseUserCreationForm):
    """The admin's add form: email and password. The profile, bonus and ledger row are
    created by the database trigger when the identity is saved."""

    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"  # noqa: DJ007 -- the admin's fieldsets choose what is shown
