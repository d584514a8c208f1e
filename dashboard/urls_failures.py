"""Failure groups (mounted at "/", inside the environment)."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import failures

urlpatterns: list[URLPattern | URLResolver] = [
    path("failures/", failures.failure_groups, name="failures"),
    path("failures/<int:pk>/state/", failures.failure_group_state, name="failure_state"),
    path("failures/<int:pk>/redrive/", failures.failure_group_redrive, name="failure_redrive"),
    path("failures/<int:pk>/delete/", failures.failure_group_delete, name="failure_delete"),
]
