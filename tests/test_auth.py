from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from operations.access import is_operator


@pytest.mark.django_db
def test_migrations_create_the_three_groups():
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "operator", "admin"}


@pytest.mark.django_db
def test_each_group_bundles_its_actions():
    def codes(name: str) -> set[str]:
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert codes("viewer") == {"view_message_bodies", "export_messages"}
    assert codes("operator") - codes("viewer") == {
        "redrive",
        "replay",
        "republish",
        "cancel_operation",
    }
    assert codes("admin") - codes("operator") == {"view_unmasked", "edit_resend", "delete_messages"}


@pytest.mark.django_db
def test_createdemousers_uses_demo_password(monkeypatch, capsys):
    monkeypatch.setenv("DEMO_PASSWORD", "correct horse battery")
    call_command("createdemousers")
    oncall = User.objects.get(username="oncall")
    assert oncall.check_password("correct horse battery") and is_operator(oncall)
    assert not is_operator(User.objects.get(username="viewer"))


@pytest.mark.django_db
def test_createdemousers_generates_and_prints_a_password(monkeypatch, capsys):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    call_command("createdemousers")
    password = capsys.readouterr().out.strip().rsplit(": ", 1)[-1]
    assert len(password) >= 12
    assert User.objects.get(username="viewer").check_password(password)


@pytest.mark.django_db
def test_createdemousers_twice_is_harmless(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "pw-one-two-three")
    call_command("createdemousers")
    call_command("createdemousers")
    assert User.objects.filter(username__in=["oncall", "viewer"]).count() == 2


@pytest.mark.django_db
def test_login_and_logout(client):
    User.objects.create_user("alice", password="s3cret-pass-word")
    response = client.post("/login/", {"username": "alice", "password": "s3cret-pass-word"})
    assert response.status_code == 302
    assert client.post("/logout/").status_code == 302


@pytest.mark.django_db
def test_wrong_password_shows_an_error(client):
    User.objects.create_user("alice", password="s3cret-pass-word")
    response = client.post("/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
