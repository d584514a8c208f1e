"""Every HTTP face of eventops. AWS-backed pages and fragments live under ``/env/<name>/``
(dashboard/environment.py activates that environment for the view); login, health,
the admin and the environment picker do not."""

from django.contrib import admin
from django.urls import include, path, register_converter
from mozilla_django_oidc.views import OIDCLogoutView

from dashboard import api, auth, converters, oidc
from dashboard.environment import EnvironmentConverter
from dashboard.views import health, home, hooks, metrics, tokens

register_converter(EnvironmentConverter, "env")
# <queue:name>, <bus:name>, <archive:name>...: AWS names checked before any view runs.
converters.register()

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
    path("login/", auth.sign_in, name="login"),
    # Ends the provider's session too, when signed in through it (dashboard/oidc.py).
    path("logout/", OIDCLogoutView.as_view(), name="logout"),
    path(
        "oidc/authenticate/",
        oidc.AuthenticationRequestView.as_view(),
        name="oidc_authentication_init",
    ),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_authentication_callback"),
    path("admin/login/", auth.admin_login, name="admin_login"),
    path("hooks/sns", hooks.sns_hook, name="sns_hook"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", home.home, name="home"),
    path("tokens/", tokens.token_list, name="api_tokens"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="api_token_revoke"),
    *api.urlpatterns(),
    path("env/<env:env>/", include(environment_patterns)),
]
