"""API tokens: each user makes, lists and revokes their own (the secret is shown once)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from operations import api_tokens
from operations.models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(max_length=api_tokens.MAX_NAME, help_text="What it is for (audited).")
    expires_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=3650,
        label="Expires after (days)",
        help_text="Empty: never.",
    )


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """Your tokens; POST makes one and shows its secret on this answer only."""
    form = TokenForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            created = api_tokens.create(request.user, data["name"], data["expires_days"])
            form = TokenForm()
        else:
            status = 400
    tokens = ApiToken.objects.filter(user=_user(request))
    context = {"form": form, "tokens": tokens, "created": created}
    response = render(request, "tokens/list.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk, user=_user(request)).first()
    if token is None:
        raise Http404("You have no such token.")
    if api_tokens.revoke(token):
        messages.success(request, f"Token {token.name} ({token.prefix}) revoked.")
    else:
        messages.info(request, f"Token {token.name} was already revoked.")
    return redirect("api_tokens")


def _user(request: HttpRequest) -> Any:
    return request.user
