"""URLs of DLQ operations (mounted at "/"). DLQ pages take the DLQ queue NAME."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import dlq_actions as actions
from dashboard.views import dlq_messages as messages
from dashboard.views import dlq_table, operations, redrive

app_name = "operations"
urlpatterns: list[URLPattern | URLResolver] = [
    path("operations/", operations.operation_list, name="list"),
    path("operations/<int:pk>/", operations.operation_detail, name="detail"),
    path("operations/<int:pk>/progress/", operations.operation_progress, name="progress"),
    path("operations/<int:pk>/cancel/", operations.operation_cancel, name="cancel"),
    path("queues/<str:name>/messages/", messages.dlq_messages, name="dlq_messages"),
    path("queues/<str:name>/messages/export.json", messages.dlq_export, name="dlq_export"),
    path("queues/<str:name>/messages/delete/", actions.dlq_delete, name="dlq_delete"),
    path("queues/<str:name>/messages/<str:message_id>/edit/", actions.dlq_edit, name="dlq_edit"),
    path(
        "queues/<str:name>/messages/<str:message_id>/body/",
        dlq_table.dlq_message_body,
        name="dlq_message_body",
    ),
    path("queues/<str:name>/scan/", dlq_table.dlq_scan, name="dlq_scan"),
    path("queues/<str:name>/redrive/", redrive.redrive_preview, name="redrive"),
    path("queues/<str:name>/redrive/start/", redrive.redrive_start, name="redrive_start"),
]
