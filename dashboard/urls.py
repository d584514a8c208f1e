"""Every HTTP face of eventops. AWS-backed pages and fragments live under ``/env/<name>/``
(dashboard/environment.py activates that environment for the view); login, health,
the admin and the environment picker do not."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, register_converter

from dashboard.environment import EnvironmentConverter
from dashboard.views import health, home

register_converter(EnvironmentConverter, "env")

# One URL module per feature, all inside the environment.
environment_patterns = [
    path("", include("dashboard.urls_overview")),
    path("", include("dashboard.urls_operations")),
    path("", include("dashboard.urls_archive")),
    path("", include("dashboard.urls_correlation")),
    path("", include("dashboard.urls_failures")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", home.home, name="home"),
    path("env/<env:env>/", include(environment_patterns)),
]
