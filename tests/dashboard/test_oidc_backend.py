"""The single sign-on backend: who the provider's claims make a user, and their groups."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from dashboard import oidc
from dashboard.role_map import parse_role_map
from operations import access
from operations.access import Action
from tests.conftest import ensure_groups

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sso(settings):
    ensure_groups()
    settings.OIDC_RP_CLIENT_ID = "eventops"
    settings.OIDC_OP_USER_ENDPOINT = ""  # the claims come from the ID token alone here
    settings.OIDC_OP_DISCOVERY_URL = ""
    settings.EVENTOPS_OIDC_GROUPS_CLAIM = "groups"
    settings.EVENTOPS_OIDC_ROLE_MAP = parse_role_map(
        "sre-oncall=operator,engineering=viewer,prod-admins=admin@prod"
    )


def sign_in(claims):
    return oidc.RoleMappingBackend().get_or_create_user("access", "id", claims)


def names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def test_first_login_creates_the_user_with_the_mapped_groups():
    user = sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["sre-oncall", "x"]})
    assert (user.username, names(user)) == ("alice", {"operator"})
    assert access.allows(user, Action.REDRIVE, "default")
    assert not user.has_usable_password()


def test_a_later_login_sets_the_mapped_groups_exactly():
    sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["sre-oncall"]})
    user = sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["engineering"]})
    assert names(user) == {"viewer"}
    assert not access.allows(user, Action.REDRIVE, "default")
    assert User.objects.filter(username="alice").count() == 1


def test_groups_the_map_never_mentions_are_left_alone():
    user = sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["sre-oncall"]})
    user.groups.add(Group.objects.get_or_create(name="auditors")[0])
    user = sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["engineering"]})
    assert names(user) == {"viewer", "auditors"}


def test_an_environment_scoped_group_is_created_and_grants_its_role_there_only():
    user = sign_in({"sub": "u-2", "email": "bob@example.com", "groups": "prod-admins"})
    assert user.username == "bob@example.com" and names(user) == {"admin@prod"}
    assert access.allows(user, Action.DELETE, "prod")
    assert not access.allows(user, Action.DELETE, "staging")


def test_no_mapped_group_refuses_the_login_and_removes_the_roles():
    sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["sre-oncall"]})
    with pytest.raises(oidc.SuspiciousOperation):
        sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["marketing"]})
    assert names(User.objects.get(username="alice")) == set()


def test_no_mapped_group_on_first_login_creates_nobody():
    with pytest.raises(oidc.SuspiciousOperation):
        sign_in({"sub": "u-3", "preferred_username": "carol", "groups": []})
    assert not User.objects.filter(username="carol").exists()


def test_a_local_account_with_a_password_is_never_taken_over():
    User.objects.create_user("alice", password="local-secret-123")
    with pytest.raises(oidc.SuspiciousOperation):
        sign_in({"sub": "u-1", "preferred_username": "alice", "groups": ["sre-oncall"]})
    assert names(User.objects.get(username="alice")) == set()


@pytest.mark.parametrize(
    ("claims", "username"),
    [
        ({"sub": "s", "preferred_username": "a.b", "email": "e@x.io"}, "a.b"),
        ({"sub": "s", "preferred_username": "has space", "email": "e@x.io"}, "e@x.io"),
        ({"sub": "abc-123"}, "abc-123"),
    ],
)
def test_username_is_the_first_valid_claim(claims, username):
    assert oidc.username_for(claims) == username


def test_an_unusable_subject_gets_a_stable_hashed_username():
    first = oidc.username_for({"sub": "ü" * 200})
    assert first == oidc.username_for({"sub": "ü" * 200}) and first.startswith("oidc-")
    assert first != oidc.username_for({"sub": "ü" * 199})


def test_the_backend_is_inert_until_single_sign_on_is_configured(settings, rf):
    settings.OIDC_RP_CLIENT_ID = ""
    request = rf.get("/oidc/callback/", {"code": "c", "state": "s"})
    assert oidc.RoleMappingBackend().authenticate(request, nonce="n") is None


def test_endpoints_come_from_the_discovery_document_once(settings, monkeypatch):
    fetched = []

    class Response:
        def raise_for_status(self):
            pass

        def json(self):
            return {"token_endpoint": "https://idp.example/token", "end_session_endpoint": ""}

    def get(url, timeout):
        fetched.append(url)
        return Response()

    monkeypatch.setattr(oidc.requests, "get", get)
    oidc.forget_discovery()
    settings.OIDC_OP_DISCOVERY_URL = "https://idp.example/.well-known/openid-configuration"
    settings.OIDC_OP_TOKEN_ENDPOINT = ""
    settings.OIDC_OP_USER_ENDPOINT = "https://explicit.example/userinfo"
    backend = oidc.RoleMappingBackend()
    assert backend.OIDC_OP_TOKEN_ENDPOINT == "https://idp.example/token"
    assert backend.OIDC_OP_USER_ENDPOINT == "https://explicit.example/userinfo"
    assert oidc.RoleMappingBackend().OIDC_OP_TOKEN_ENDPOINT == "https://idp.example/token"
    assert fetched == [settings.OIDC_OP_DISCOVERY_URL]
    oidc.forget_discovery()


def test_a_userinfo_about_someone_else_is_refused(settings, monkeypatch):
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example/userinfo"
    monkeypatch.setattr(
        OIDCAuthenticationBackend,
        "get_userinfo",
        lambda self, a, i, p: {"sub": "mallory", "groups": ["sre-oncall"]},
    )
    with pytest.raises(oidc.SuspiciousOperation):
        sign_in({"sub": "u-1", "preferred_username": "alice", "groups": []})
    assert not User.objects.filter(username="alice").exists()


def test_groups_from_the_userinfo_endpoint_count(settings, monkeypatch):
    from mozilla_django_oidc.auth import OIDCAuthenticationBackend

    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example/userinfo"
    monkeypatch.setattr(
        OIDCAuthenticationBackend,
        "get_userinfo",
        lambda self, a, i, p: {"sub": "u-1", "groups": ["sre-oncall"]},
    )
    user = sign_in({"sub": "u-1", "preferred_username": "alice"})
    assert names(user) == {"operator"}
