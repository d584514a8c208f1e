"""Every form POST this round added refuses a request without its CSRF token, and changes
nothing: failure-group state and delete, starting a scan, API tokens, the rate change."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from operations.models import ApiToken, Operation
from operations.triage.models import FailureGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def group() -> FailureGroup:
    return FailureGroup.objects.create(
        environment="default", dlq_url="u", dlq_name="orders-dlq", key="a" * 32, title="t"
    )


@pytest.fixture
def token(admin) -> ApiToken:
    return ApiToken.objects.create(user=admin, name="ci", prefix="abcd1234", hashed="0" * 64)


@pytest.mark.parametrize(
    ("name", "args", "data"),
    [
        ("failure_state", ["group"], {"state": "resolved", "note": "n"}),
        ("failure_delete", ["group"], {}),
        ("operations:dlq_scan", ["orders-dlq"], {"reason": "look"}),
        ("api_tokens", [], {"name": "new"}),
        ("api_token_revoke", ["token"], {}),
    ],
)
def test_a_post_without_its_csrf_token_is_refused(
    admin, group: FailureGroup, token: ApiToken, name: str, args: list[str], data: dict
) -> None:
    ids = {"group": group.pk, "token": token.pk}
    values = [ids.get(a, a) for a in args]
    url = reverse(name, args=values if name.startswith("api_") else ["default", *values])
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    before = (
        list(FailureGroup.objects.values_list("pk", "state")),
        list(ApiToken.objects.values_list("pk", "revoked_at")),
        Operation.objects.count(),
    )
    assert client.post(url, data).status_code == 403
    after = (
        list(FailureGroup.objects.values_list("pk", "state")),
        list(ApiToken.objects.values_list("pk", "revoked_at")),
        Operation.objects.count(),
    )
    assert after == before
