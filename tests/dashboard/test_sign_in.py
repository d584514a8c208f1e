"""The login page, the password switch and the lockout after repeated failures (axes)."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-pass-word"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", password=PASSWORD)


def fail(client, username="alice", address="10.0.0.1"):
    return client.post("/login/", {"username": username, "password": "wrong"}, REMOTE_ADDR=address)


def test_without_single_sign_on_the_page_has_only_the_password_form(client):
    page = client.get("/login/").content.decode()
    assert 'id="id_password"' in page and "Sign in with" not in page


def test_with_single_sign_on_the_page_offers_the_provider(client, settings):
    settings.OIDC_RP_CLIENT_ID = "eventops"
    settings.EVENTOPS_OIDC_PROVIDER_LABEL = "Okta"
    page = client.get("/login/?next=/env/default/").content.decode()
    assert "Sign in with Okta" in page
    assert 'href="/oidc/authenticate/?next=%2Fenv%2Fdefault%2F"' in page


def test_single_sign_on_endpoints_are_404_until_configured(client):
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=a&state=b").status_code == 404


def test_password_login_off_hides_the_form_and_refuses_the_post(client, settings, alice):
    settings.OIDC_RP_CLIENT_ID = "eventops"
    settings.EVENTOPS_PASSWORD_LOGIN = False
    assert 'id="id_password"' not in client.get("/login/").content.decode()
    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403 and b"Password sign-in is turned off" in response.content
    assert "_auth_user_id" not in client.session


def test_password_login_off_refuses_the_password_everywhere(rf, settings, alice):
    settings.EVENTOPS_PASSWORD_LOGIN = False
    request = rf.post("/admin/login/")
    assert authenticate(request, username="alice", password=PASSWORD) is None
    settings.EVENTOPS_PASSWORD_LOGIN = True
    assert authenticate(request, username="alice", password=PASSWORD) == alice


def test_the_admin_login_page_is_ours(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fadmin%2F"


def test_five_failures_lock_the_account_at_that_address(client, alice):
    for _ in range(4):
        assert fail(client).status_code == 200
    locked = fail(client)
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    right = client.post(
        "/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert right.status_code == 429 and "_auth_user_id" not in client.session


def test_the_lockout_is_per_account_and_address(client, alice):
    for _ in range(5):
        fail(client)
    other_address = client.post(
        "/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )
    assert other_address.status_code == 302


def test_the_limit_and_the_lockout_time_are_settings(client, settings, alice):
    settings.AXES_FAILURE_LIMIT = 2
    assert fail(client).status_code == 200
    locked = fail(client)
    assert locked.status_code == 429 and b"after 2 failed logins" in locked.content


def test_the_lockout_ends_after_the_cool_off(client, alice, time_machine):
    time_machine.move_to("2030-01-01T12:00:00Z", tick=False)
    for _ in range(5):
        fail(client)
    time_machine.move_to("2030-01-01T12:16:00Z", tick=False)
    response = client.post(
        "/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 302


def test_axes_comes_first_and_lets_single_sign_on_through(client, rf, settings, monkeypatch, alice):
    """The chain is axes, passwords, OIDC: an OIDC callback's authenticate() passes axes
    and reaches the OIDC backend (and a password lockout of that name does not stop it:
    the provider vouched for the person)."""
    from dashboard import oidc

    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    settings.OIDC_RP_CLIENT_ID = "eventops"
    sso_user = User.objects.create_user("alice-sso")
    reached = []

    def provider_says_yes(self, request, **kwargs):
        reached.append(kwargs)
        return sso_user

    for _ in range(5):
        fail(client)
    assert fail(client).status_code == 429  # alice is locked out at this address
    monkeypatch.setattr(oidc.RoleMappingBackend, "authenticate", provider_says_yes)
    request = rf.get("/oidc/callback/", {"code": "c", "state": "s"}, REMOTE_ADDR="10.0.0.1")
    request.session = {}
    assert authenticate(request, nonce="n", code_verifier=None) == sso_user
    assert reached == [{"nonce": "n", "code_verifier": None}]


def test_repeated_failed_single_sign_on_callbacks_lock_the_address(rf, settings, monkeypatch):
    from dashboard import oidc

    settings.OIDC_RP_CLIENT_ID = "eventops"
    reached = []
    monkeypatch.setattr(
        oidc.RoleMappingBackend, "authenticate", lambda self, request, **kw: reached.append(1)
    )

    def callback():
        request = rf.get("/oidc/callback/", {"code": "c", "state": "s"}, REMOTE_ADDR="10.9.9.9")
        request.session = {}
        return authenticate(request, nonce="n", code_verifier=None)

    results = [callback() for _ in range(6)]
    assert results == [None] * 6
    assert len(reached) == 5  # the sixth never reached the provider
