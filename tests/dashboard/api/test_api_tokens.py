"""API tokens: ``manage.py apitoken`` and the page where users manage their own."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from operations import api_tokens
from operations.models import ApiToken

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("apitoken", *args, stdout=out)
    return out.getvalue()


def test_create_prints_the_token_alone_on_its_last_line(viewer) -> None:
    token = run("create", "viewer", "--name", "grafana", "--expires", "30").splitlines()[-1]
    found = api_tokens.authenticate(token)
    assert found is not None and (found.name, found.user) == ("grafana", viewer)
    assert found.expires_at is not None


def test_only_the_hash_is_stored(viewer) -> None:
    token = run("create", "viewer").splitlines()[-1]
    row = ApiToken.objects.get()
    assert token not in (row.hashed, row.prefix) and row.hashed == api_tokens.digest(token)


def test_list_shows_prefixes_not_secrets(viewer) -> None:
    token = run("create", "viewer", "--name", "ci").splitlines()[-1]
    listed = run("list")
    assert ApiToken.objects.get().prefix in listed and token not in listed


def test_revoke_stops_the_token(viewer) -> None:
    token = run("create", "viewer").splitlines()[-1]
    run("revoke", "viewer", ApiToken.objects.get().prefix)
    assert api_tokens.authenticate(token) is None


def test_unknown_user_is_a_clear_error(db) -> None:
    with pytest.raises(CommandError, match="No user named"):
        run("create", "ghost")


def test_bad_expiry_is_refused(viewer) -> None:
    with pytest.raises(CommandError, match="positive"):
        run("create", "viewer", "--expires", "0")
    assert not ApiToken.objects.exists()


def test_page_shows_a_new_token_once(viewer_client: Client, viewer) -> None:
    created = viewer_client.post("/tokens/", {"name": "laptop"}).content.decode()
    token = ApiToken.objects.get()
    again = viewer_client.get("/tokens/").content.decode()
    plaintext = created.split('<pre class="token-secret">', 1)[1].split("</pre>", 1)[0]
    assert api_tokens.authenticate(plaintext) is not None and token.user == viewer
    assert plaintext not in again and token.prefix in again


def test_page_refuses_a_token_without_a_name(viewer_client: Client) -> None:
    assert viewer_client.post("/tokens/", {"name": ""}).status_code == 400
    assert not ApiToken.objects.exists()


def test_page_revokes_only_ones_own_tokens(viewer_client: Client, operator) -> None:
    theirs = api_tokens.create(operator, "theirs").token
    assert viewer_client.post(f"/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_page_revokes(viewer_client: Client, viewer) -> None:
    mine = api_tokens.create(viewer, "mine").token
    response = viewer_client.post(f"/tokens/{mine.pk}/revoke/")
    mine.refresh_from_db()
    assert response.status_code == 302 and mine.revoked_at is not None


def test_page_needs_a_login(client: Client) -> None:
    response = client.get("/tokens/")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_revoke_by_get_is_405(viewer_client: Client, viewer) -> None:
    mine = api_tokens.create(viewer, "mine").token
    assert viewer_client.get(f"/tokens/{mine.pk}/revoke/").status_code == 405


def test_an_inactive_users_token_is_refused(viewer) -> None:
    token = api_tokens.create(viewer, "x").plaintext
    User.objects.filter(pk=viewer.pk).update(is_active=False)
    assert api_tokens.authenticate(token) is None
