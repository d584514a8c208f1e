"""Correlation lookup (the navigation's search box) and the alarm drill-down."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import alarms, correlation

urlpatterns: list[URLPattern | URLResolver] = [
    path("search/", correlation.correlation, name="correlation"),
    path("search/panel/<slug:key>/", correlation.correlation_panel, name="correlation_panel"),
    path("alarms/", alarms.alarm_list, name="alarms"),
    # Alarm names may contain "/", so the name is a path; notifications deep-link here.
    path("alarms/<alarm:name>/", alarms.alarm_detail, name="alarm_detail"),
]
