"""URLs of DLQ operations (mounted at "/"). DLQ pages take the DLQ queue NAME."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import access_log, dlq_table, operations, redrive, redrive_controls
from dashboard.views import dlq_actions as actions
from dashboard.views import dlq_messages as messages

app_name = "operations"
urlpatterns: list[URLPattern | URLResolver] = [
    path("operations/", operations.operation_list, name="list"),
    path("operations/access/", access_log.access_log, name="access_log"),
    path("operations/<int:pk>/", operations.operation_detail, name="detail"),
    path("operations/<int:pk>/progress/", operations.operation_progress, name="progress"),
    path("operations/<int:pk>/cancel/", operations.operation_cancel, name="cancel"),
    path("operations/<int:pk>/rate/", redrive_controls.redrive_rate, name="rate"),
    path("operations/<int:pk>/live/", redrive_controls.redrive_live, name="live"),
    path("queues/<queue:name>/messages/", messages.dlq_messages, name="dlq_messages"),
    path("queues/<queue:name>/messages/export.json", messages.dlq_export, name="dlq_export"),
    path("queues/<queue:name>/messages/delete/", actions.dlq_delete, name="dlq_delete"),
    path(
        "queues/<queue:name>/messages/<awsid:message_id>/edit/", actions.dlq_edit, name="dlq_edit"
    ),
    path("queues/<queue:name>/redrive/", redrive.redrive_preview, name="redrive"),
    path("queues/<queue:name>/redrive/start/", redrive.redrive_start, name="redrive_start"),
    path(
        "queues/<queue:name>/messages/<awsid:message_id>/body/",
        dlq_table.dlq_message_body,
        name="dlq_message_body",
    ),
    path("queues/<queue:name>/scan/", dlq_table.dlq_scan, name="dlq_scan"),
]
