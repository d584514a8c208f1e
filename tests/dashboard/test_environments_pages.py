"""Environments in the pages: URLs, the picker, the band, the switcher, who sees what."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from tests.conftest import ensure_groups

pytestmark = pytest.mark.django_db

TWO = """
[environments.prod]
region = "us-east-1"
label = "Production"
color = "red"

[environments.staging]
region = "us-east-1"
label = "Staging"
color = "green"
"""


@pytest.fixture
def two_environments(tmp_path: Path, settings) -> None:
    path = tmp_path / "environments.toml"
    path.write_text(TWO)
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(path)


def signed_in(*groups: str) -> Client:
    ensure_groups()
    user = User.objects.create_user(f"person{User.objects.count()}")
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    client = Client()
    client.force_login(user)
    return client


def test_with_one_environment_slash_leads_to_its_overview(viewer_client) -> None:
    response = viewer_client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/env/default/")


def test_with_several_slash_is_a_picker(two_environments) -> None:
    html = signed_in("viewer").get("/").content.decode()
    assert 'href="/env/prod/"' in html and 'href="/env/staging/"' in html


def test_a_scoped_viewer_is_sent_to_the_one_environment_they_see(two_environments) -> None:
    response = signed_in("viewer@staging").get("/")
    assert response["Location"] == "/env/staging/"


def test_an_unknown_environment_is_404(viewer_client) -> None:
    assert viewer_client.get("/env/nope/queues/").status_code == 404


def test_an_environment_the_user_has_no_role_in_is_403(two_environments, aws) -> None:
    client = signed_in("viewer@staging")
    assert client.get("/env/prod/queues/").status_code == 403
    assert client.get("/env/staging/queues/").status_code == 200


def test_every_page_shows_the_environment_label_and_colour(two_environments, aws) -> None:
    html = signed_in("viewer").get("/env/staging/queues/").content.decode()
    assert 'class="env-band env-color-green"' in html and ">Staging</strong>" in html


def test_the_switcher_keeps_a_list_page(two_environments, aws) -> None:
    html = signed_in("viewer").get("/env/staging/queues/").content.decode()
    assert 'href="/env/prod/queues/"' in html


def test_the_switcher_goes_to_the_overview_from_an_object_page(two_environments, aws) -> None:
    html = signed_in("viewer").get("/env/staging/alarms/some-alarm/").content.decode()
    assert 'href="/env/prod/"' in html and 'href="/env/prod/alarms/some-alarm/"' not in html


def test_roles_are_per_environment_in_the_pages(two_environments, aws) -> None:
    client = signed_in("viewer", "operator@staging")
    assert 'badge">operator<' in client.get("/env/staging/queues/").content.decode()
    assert 'badge">viewer<' in client.get("/env/prod/queues/").content.decode()


def test_a_correlation_lookup_can_look_in_every_environment(two_environments, aws) -> None:
    html = signed_in("viewer").get("/env/prod/search/", {"q": "corr-1", "envs": "all"})
    text = html.content.decode()
    assert "/env/prod/search/panel/dlq/?" in text and "/env/staging/search/panel/dlq/?" in text


def test_a_correlation_lookup_looks_only_where_the_user_may(two_environments, aws) -> None:
    text = signed_in("viewer@prod").get("/env/prod/search/", {"q": "c", "envs": "all"})
    assert "/env/staging/" not in text.content.decode()
