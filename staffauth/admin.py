"""The admin's view of staff two-factor sign-in: who has an authenticator app, and a
superuser's reset (README, "Staff sign-in").

django-otp registers admins of its own for its devices that show and edit the secret key
and list recovery codes in clear; this app is installed before django-otp's, so its
hidden registrations below take those places and the devices are seen only through
TwoFactorDeviceAdmin: read only, never the key.
"""

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth import services
from staffauth.models import TwoFactorDevice
from velro.admin import BigTableAdminMixin, ReadOnlyAdminMixin


class _HiddenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Holds a model's registration so django-otp's admin cannot; shows nothing."""

    def has_module_permission(self, request):
        return False

    def has_view_permission(self, request, obj=None):
        return False


admin.site.register(TOTPDevice, _HiddenAdmin)
admin.site.register(StaticDevice, _HiddenAdmin)


@admin.register(TwoFactorDevice)
class TwoFactorDeviceAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Authenticator apps, read only. A superuser resets a person's two-factor sign-in
    (deletes their app and recovery codes) with the action or the delete button; at their
    next admin request that person must verify again — or, if required, enrol again."""

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at", "recovery_codes_left")
    list_filter = ("confirmed",)
    search_fields = ("^user__email",)
    search_help_text = "An email or its beginning."
    list_select_related = ("user",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    ordering = ("user__email",)
    actions = ("reset_two_factor",)

    def get_queryset(self, request):
        codes = (
            StaticToken.objects.filter(device__user=OuterRef("user"), device__confirmed=True)
            .order_by()
            .values("device__user")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(codes_left=Coalesce(Subquery(codes), 0))

    @admin.display(description="recovery codes left", ordering="codes_left")
    def recovery_codes_left(self, device):
        return device.codes_left

    def has_add_permission(self, request):
        return False  # a person enrols themselves (Two-factor sign-in, top right)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the reset below deletes the codes too
        return actions

    def delete_model(self, request, obj):
        services.two_factor_remove(obj.user)

    def delete_queryset(self, request, queryset):
        for user in {device.user for device in queryset.select_related("user")}:
            services.two_factor_remove(user)

    @admin.action(description="Reset two-factor sign-in (delete the app and recovery codes)", permissions=["delete"])
    def reset_two_factor(self, request, queryset):
        users = sorted({device.user for device in queryset.select_related("user")}, key=lambda user: user.email)
        for user in users:
            services.two_factor_remove(user)
            self.log_change(request, user, f"Reset two-factor sign-in of {user.email}.")
        self.message_user(
            request,
            f"Two-factor sign-in reset for {', '.join(user.email for user in users)}: they set it up again "
            "at their next sign-in if it is required.",
            messages.SUCCESS,
        )
