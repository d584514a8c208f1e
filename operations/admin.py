"""The audit trail in the admin: read-only (ARCHITECTURE.md decision 4: nothing edits it)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from operations.models import Operation, TouchedCorrelation
from operations.read_audit import ReadAudit


class ReadOnlyAdmin(admin.ModelAdmin):
    """No add, change or delete: the rows are the audit trail."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "target_label",
        "state",
        "moved",
        "failed",
        "skipped",
        "requested_by_name",
        "created_at",
    )
    list_filter = ("kind", "state")
    search_fields = ("target", "target_label", "requested_by_name", "reason")
    date_hierarchy = "created_at"


@admin.register(TouchedCorrelation)
class TouchedCorrelationAdmin(ReadOnlyAdmin):
    list_display = ("correlation_id", "operation", "created_at")
    search_fields = ("correlation_id",)


@admin.register(ReadAudit)
class ReadAuditAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "environment",
        "username",
        "kind",
        "unmasked",
        "target",
        "message_count",
        "via",
    )
    list_filter = ("kind", "unmasked", "via", "environment")
    search_fields = ("username", "target")
    date_hierarchy = "at"
