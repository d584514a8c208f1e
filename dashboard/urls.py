from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.views import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Feature pages, one URL module each.
    path("", include("dashboard.urls_overview")),
    path("", include("operations.urls")),
    path("", include("dashboard.urls_archive")),
    path("", include("dashboard.urls_correlation")),
]
