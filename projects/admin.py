from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from projects.models import Project
from projects.services import EDITABLE, project_create, project_delete, project_restore, project_update
from velro.admin import BigTableAdminMixin
from velro.expressions import UTCTimestamp, words


class ArchivedFilter(admin.SimpleListFilter):
    title = "archived"
    parameter_name = "archived"

    def lookups(self, request, model_admin):
        return (("yes", "Archived"), ("no", "Not archived"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(archived_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(archived_at__isnull=True)
        return queryset


class ProjectAdminForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["user", "name", "description", "visibility"]

    def clean(self):
        cleaned = super().clean()
        # The per-owner unique name is an expression constraint on (user, lower(name));
        # Django skips it when "user" is read-only (on edit), so check it here, on the
        # field, as the service does.
        name = (cleaned.get("name") or "").strip()
        owner_id = cleaned["user"].pk if cleaned.get("user") else self.instance.user_id
        if name and owner_id:
            taken = Project.objects.filter(user_id=owner_id, name__iexact=name).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("name", "This user already has a project with this name.")
        return cleaned


@admin.register(Project)
class ProjectAdmin(BigTableAdminMixin, admin.ModelAdmin):
    """Projects, saved through the project services like the API does: only the
    editable columns are written, so the trigger-kept generation_count is never
    overwritten with the value this page loaded."""

    form = ProjectAdminForm
    list_display = ("name", "owner_email", "visibility", "generations_link", "archived_at", "created")
    list_filter = ("visibility", ArchivedFilter)
    # What BigTableAdminMixin.get_search_results searches, by the shape of the term.
    search_fields = ("^user__email", "=id", "name")
    search_help_text = (
        "An email or its beginning (that person's projects), a project's id, or words of the name "
        "(each matches the words that start with it)."
    )
    words_vector = words("name")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    ordering = (UTCTimestamp("created_at").desc(), "-id")  # projects_admin_order_idx
    owner_ordering = ("-created_at", "-id")  # projects_user_created_idx
    # Newest first only: sorting the whole table by a name or an email would be a full
    # sort on every page view.
    sortable_by = ("created",)
    actions = ["delete_or_archive", "restore"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "description", "visibility")
        return (
            "id",
            "user",
            "name",
            "description",
            "visibility",
            "generation_count",
            "archived_at",
            "created_at",
            "updated_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        # The owner is fixed: moving a project would leave the old owner's generations
        # in someone else's project. Archiving has its own actions.
        return ("id", "user", "generation_count", "archived_at", "created_at", "updated_at")

    def has_delete_permission(self, request, obj=None):
        # Django's delete would detach the project's generations; "Delete or archive"
        # goes through project_delete, which archives a project that has any.
        return False

    def has_remove_permission(self, request):
        return request.user.has_perm("projects.delete_project")

    def save_model(self, request, obj, form, change):
        if change:
            project_update(project=obj, data={name: form.cleaned_data[name] for name in EDITABLE})
        else:
            created = project_create(
                user=obj.user, name=obj.name, description=obj.description, visibility=obj.visibility
            )
            obj.pk = created.pk
            obj.refresh_from_db()

    @admin.display(description="owner", ordering="user__email")
    def owner_email(self, obj):
        return obj.user.email

    @admin.display(description="generations", ordering="generation_count")
    def generations_link(self, obj):
        url = reverse("admin:generations_generation_changelist")
        return format_html('<a href="{}?project={}">{}</a>', url, obj.pk, obj.generation_count)

    @admin.action(description="Delete (archive those with generations)", permissions=["remove"])
    def delete_or_archive(self, request, queryset):
        deleted = archived = 0
        for project in queryset:
            if project_delete(project=project) is None:
                deleted += 1
            else:
                archived += 1
        self.message_user(request, f"Deleted {deleted} empty project(s), archived {archived}.", messages.SUCCESS)

    @admin.action(description="Restore archived", permissions=["change"])
    def restore(self, request, queryset):
        restored = 0
        for project in queryset.filter(archived_at__isnull=False):
            project_restore(project=project)
            restored += 1
        self.message_user(request, f"Restored {restored} project(s).", messages.SUCCESS)
