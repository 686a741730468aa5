class ReadOnlyInlineMixin:
    """An inline staff can read but never add to, change or delete from: for rows that
    only triggers and services write (profiles, the ledger)."""

    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
