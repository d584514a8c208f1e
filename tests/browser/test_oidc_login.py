"""In Chromium: single sign-on through a real OpenID Connect provider (oidc-provider-mock,
in a thread of this process, on a free port), its own pages clicked like a person would.

The dashboard finds the provider by its discovery document, signs the person in with the
code flow (RS256 ID token checked against the provider's JWKS), creates the user and maps
the provider's groups to roles; a second login with other groups changes the roles; logout
ends the provider's session too.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import oidc_provider_mock
import pytest
from django.contrib.auth.models import User

from dashboard import oidc
from dashboard.role_map import parse_role_map
from operations.models import Operation
from tests.conftest import ensure_groups

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ALICE = oidc_provider_mock.User(
    sub="alice-sub-1",
    claims={
        "preferred_username": "alice",
        "email": "alice@example.com",
        "groups": ["sre-oncall", "everyone"],
    },
)


@pytest.fixture
def provider(settings: Any) -> Iterator[str]:
    """The provider, and the dashboard configured to use it (the live server shares these
    settings). Yields the provider's base URL."""
    with oidc_provider_mock.run_server_in_thread(user_claims=[ALICE]) as server:
        base = f"http://localhost:{server.server_port}"
        settings.OIDC_RP_CLIENT_ID = "eventops-test"
        settings.OIDC_RP_CLIENT_SECRET = "not-a-secret"
        settings.OIDC_OP_DISCOVERY_URL = f"{base}/.well-known/openid-configuration"
        settings.EVENTOPS_OIDC_PROVIDER_LABEL = "Mock IdP"
        settings.EVENTOPS_OIDC_ROLE_MAP = parse_role_map("sre-oncall=operator,engineering=viewer")
        # What settings.py adds to the CSP's form-action from OIDC_OP_DISCOVERY_URL.
        directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
        settings.CONTENT_SECURITY_POLICY = {
            "DIRECTIVES": {**directives, "form-action": ["'self'", base]}
        }
        oidc.forget_discovery()
        yield base
    oidc.forget_discovery()


def set_claims(base: str, sub: str, claims: dict[str, object]) -> None:
    """The provider's own API for changing a user's claims (PUT /users/<sub>)."""
    request = urllib.request.Request(
        f"{base}/users/{sub}",
        data=json.dumps(claims).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def sign_in(page: Any, live_server: Any, next_path: str) -> None:
    page.goto(f"{live_server.url}{next_path}")  # anonymous: sent to the login page
    page.get_by_role("link", name="Sign in with Mock IdP").click()
    # The provider's authorization page: its predefined user is one button.
    page.get_by_role("button", name=ALICE.sub).click()
    page.wait_for_url(f"{live_server.url}{next_path}")


def groups_of(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_sign_in_through_the_provider_maps_groups_to_roles(live_server, page, provider):
    ensure_groups()
    op = Operation.objects.create(
        kind="redrive", target="https://sqs/q/orders-dlq", target_label="orders-dlq", reason="r"
    )
    detail = f"/env/default/operations/{op.pk}/"

    sign_in(page, live_server, detail)
    assert groups_of("alice") == {"operator"}
    assert page.locator(".who .user").inner_text().startswith("alice")
    assert page.locator("#cancel-form").count() == 1  # an operator may cancel

    # Logout ends the provider's session too: its end-session page, then back to ours.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{provider}/oauth2/end_session**")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/login/")

    # At the provider, alice moves from sre-oncall to engineering: a viewer now.
    set_claims(provider, ALICE.sub, {**ALICE.claims, "groups": ["engineering"]})
    sign_in(page, live_server, detail)
    assert groups_of("alice") == {"viewer"}
    assert page.locator("#cancel-form").count() == 0
    assert User.objects.filter(username="alice").count() == 1


def test_a_person_whose_groups_map_to_no_role_is_not_signed_in(live_server, page, provider):
    ensure_groups()
    set_claims(provider, ALICE.sub, {**ALICE.claims, "groups": ["marketing"]})
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with Mock IdP").click()
    page.get_by_role("button", name=ALICE.sub).click()
    page.wait_for_url(f"{live_server.url}/login/?sso=failed")
    assert "no role here" in page.locator("[role=alert]").inner_text()
    assert not User.objects.filter(username="alice").exists()
