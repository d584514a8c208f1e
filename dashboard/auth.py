"""Sign-in: the login page (password form and/or "Sign in with ..."), and local passwords.

``EVENTOPS_PASSWORD_LOGIN=false`` turns local passwords off everywhere: the form is not
shown, a password POST is refused (403) before any password is checked, the admin's own
login page sends people here, and ``PasswordBackend`` accepts no password either (the
backend is the last word: no other login path can use a password).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from dashboard import oidc


def password_login() -> bool:
    return bool(getattr(settings, "EVENTOPS_PASSWORD_LOGIN", True))


class PasswordBackend(ModelBackend):
    """Django's username and password backend, unless passwords are turned off."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not password_login():
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInView(LoginView):
    """``/login/``: the password form (unless off) and the single sign-on button."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not password_login():
            return render(
                request,
                "403.html",
                {"exception": "Password sign-in is turned off here: use single sign-on."},
                status=403,
            )
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        next_url = context.get("next") or ""
        context["sso_url"] = reverse("oidc_authentication_init") + (
            f"?{urlencode({'next': next_url})}" if next_url else ""
        )
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        context.update(sign_in_context())
        return context


sign_in = login_not_required(SignInView.as_view())


@login_not_required
@require_GET
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page is ours: one place to sign in, one lockout, one switch."""
    next_url = request.GET.get("next", "")
    query = f"?{urlencode({'next': next_url})}" if next_url else ""
    return HttpResponseRedirect(reverse("login") + query)


def sign_in_context() -> dict[str, object]:
    """What the login page needs to know about the ways to sign in."""
    return {
        "password_login": password_login(),
        "sso_enabled": oidc.enabled(),
        "sso_label": getattr(settings, "EVENTOPS_OIDC_PROVIDER_LABEL", "single sign-on"),
    }
