"""The one decision of who may do what, where: groups, environment scopes, read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from operations import access
from operations.access import Action
from tests.conftest import ensure_groups

pytestmark = pytest.mark.django_db


def person(*groups: str) -> User:
    ensure_groups()
    user = User.objects.create_user(f"u{User.objects.count()}")
    for name in groups:
        group, _ = Group.objects.get_or_create(name=name)
        user.groups.add(group)
    return User.objects.get(pk=user.pk)  # a fresh object: nothing remembered


def test_a_viewer_reads_everywhere_and_changes_nothing() -> None:
    viewer = person("viewer")
    assert access.allows(viewer, Action.VIEW_BODIES, "prod")
    assert not access.allows(viewer, Action.REDRIVE, "prod")
    assert not access.allows(viewer, Action.VIEW_UNMASKED, "staging")


def test_an_operator_redrives_but_does_not_delete_or_unmask() -> None:
    operator = person("operator")
    assert access.allows(operator, Action.REDRIVE, "prod")
    assert access.allows(operator, Action.CANCEL, "staging")
    assert not access.allows(operator, Action.DELETE, "prod")
    assert not access.allows(operator, Action.VIEW_UNMASKED, "prod")


def test_an_admin_may_do_everything() -> None:
    admin = person("admin")
    assert all(access.allows(admin, action, "prod") for action in Action)


def test_a_scoped_group_grants_its_role_in_that_environment_only() -> None:
    user = person("viewer", "operator@staging")
    assert access.allows(user, Action.REDRIVE, "staging")
    assert not access.allows(user, Action.REDRIVE, "prod")
    assert access.allows(user, Action.VIEW_BODIES, "prod")


def test_a_scoped_viewer_sees_nothing_elsewhere() -> None:
    user = person("viewer@prod")
    assert access.allows(user, Action.VIEW_BODIES, "prod")
    assert not access.allows(user, Action.VIEW_BODIES, "staging")


def test_read_only_mode_refuses_every_mutation_even_to_superusers(settings) -> None:
    settings.EVENTOPS_READ_ONLY = True
    root = User.objects.create_superuser("root")
    assert not access.allows(root, Action.REDRIVE, "prod")
    assert access.allows(root, Action.VIEW_UNMASKED, "prod")


def test_anonymous_and_inactive_users_may_do_nothing() -> None:
    from django.contrib.auth.models import AnonymousUser

    inactive = person("admin")
    inactive.is_active = False
    assert not access.allows(AnonymousUser(), Action.VIEW_BODIES, "prod")
    assert not access.allows(inactive, Action.VIEW_BODIES, "prod")


def test_who_can_names_the_groups_for_this_environment() -> None:
    person("operator@staging")
    assert access.who_can(Action.DELETE, "prod") == (
        "Only members of admin can delete messages here."
    )
    assert access.who_can(Action.REDRIVE, "prod") == (
        "Only members of admin, operator can redrive here."
    )
