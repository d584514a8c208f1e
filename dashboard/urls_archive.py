"""Archive, replay and schema registry pages."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import archive, replay, schemas

urlpatterns: list[URLPattern | URLResolver] = [
    path("archives/", archive.archives, name="archives"),
    path("archives/operations/<int:pk>/", replay.replay_detail, name="replay_detail"),
    path("archives/operations/<int:pk>/cancel/", replay.replay_cancel, name="replay_cancel"),
    path("archives/<archive:name>/", archive.archive_detail, name="archive_detail"),
    path("archives/<archive:name>/events/", archive.archive_events, name="archive_events"),
    path(
        "archives/<archive:name>/events/<awsid:event_id>/",
        archive.archive_event,
        name="archive_event",
    ),
    path("archives/<archive:name>/replay/", replay.replay_new, name="replay_new"),
    path("archives/<archive:name>/replay/start/", replay.replay_start, name="replay_start"),
    path("archives/<archive:name>/republish/", replay.republish_events, name="republish"),
    path("schemas/", schemas.schema_list, name="schemas"),
    path("schemas/check/", schemas.schema_validate, name="schema_check"),
    path("schemas/<schema:registry>/<schema:name>/", schemas.schema_detail, name="schema_detail"),
]
