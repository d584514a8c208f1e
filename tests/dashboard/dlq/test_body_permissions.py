"""Seeing DLQ bodies needs "view bodies" and exporting them "export" (operations/access.py):
a signed-in user with no role gets a 403 that says who may, before any AWS call."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from tests import aws_calls as counting
from tests.conftest import ensure_groups

aws_calls = counting.aws_calls
pytestmark = pytest.mark.django_db


@pytest.fixture
def nobody(db) -> Client:
    """Signed in, in no group (sees the environment, may do nothing in it)."""
    ensure_groups()
    client = Client()
    client.force_login(User.objects.create_user("nobody"))
    return client


@pytest.mark.parametrize("page", ["operations:dlq_messages", "operations:dlq_export"])
def test_no_role_no_bodies(nobody, queues, aws_calls, page):
    queues.put_event(1)
    aws_calls.clear()
    response = nobody.get(reverse(page, args=["default", "orders-dlq"]))
    assert response.status_code == 403 and "Only members of" in response.content.decode()
    assert dict(aws_calls) == {}


def test_a_group_with_bodies_but_not_export_sees_no_export_link(nobody, queues):
    from django.contrib.auth.models import Permission

    group = Group.objects.create(name="readers")
    group.permissions.add(Permission.objects.get(codename="view_message_bodies"))
    User.objects.get(username="nobody").groups.add(group)
    queues.put_event(1)
    html = nobody.get(reverse("operations:dlq_messages", args=["default", "orders-dlq"])).content
    assert b"corr-1" in html and b'id="export-link"' not in html
    export = nobody.get(reverse("operations:dlq_export", args=["default", "orders-dlq"]))
    assert export.status_code == 403
