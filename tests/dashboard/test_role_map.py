"""EVENTOPS_OIDC_ROLE_MAP: parsed at startup, a typo stops the start naming the item."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.role_map import granted_groups, managed_groups, parse_role_map


def test_the_documented_example_parses():
    mapping = parse_role_map("sre-oncall=operator, engineering=viewer,prod-admins=admin@prod")
    assert mapping == {
        "sre-oncall": ("operator",),
        "engineering": ("viewer",),
        "prod-admins": ("admin@prod",),
    }


def test_empty_means_no_mapping():
    assert parse_role_map("") == {} and parse_role_map(" , ") == {}


def test_one_provider_group_may_grant_several_groups():
    mapping = parse_role_map("sre=viewer,sre=operator@staging,sre=viewer")
    assert mapping == {"sre": ("viewer", "operator@staging")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sre-oncall", "write it as provider-group=role"),
        ("=operator", "write it as provider-group=role"),
        ("sre=", "write it as provider-group=role"),
        ("sre=superuser", "the role must be one of viewer, operator, admin"),
        ("sre=operator@Prod!", "is not an environment name"),
        ("sre=operator@", "is not an environment name"),
        ("sre team=operator", "has spaces"),
    ],
)
def test_a_bad_item_is_refused_with_its_text(text, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_role_map(f"ok=viewer,{text}")
    assert message in str(raised.value)
    assert str(raised.value).startswith(f"EVENTOPS_OIDC_ROLE_MAP: {text!r}")


def test_granted_and_managed_groups():
    mapping = parse_role_map("a=viewer,b=operator@prod,c=admin")
    assert granted_groups(mapping, ["b", "zzz"]) == {"operator@prod"}
    assert managed_groups(mapping) == {"viewer", "operator@prod", "admin"}


def test_settings_refuse_a_bad_role_map_at_startup():
    from tests.test_settings_helpers import _run_settings

    result = _run_settings({"EVENTOPS_OIDC_ROLE_MAP": "sre=root", "DEBUG": "true"})
    assert result.returncode != 0
    assert "EVENTOPS_OIDC_ROLE_MAP: 'sre=root': the role must be one of" in result.stderr
