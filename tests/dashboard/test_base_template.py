"""The page frame (templates/base.html): where the dashboard says it is pointed."""

from __future__ import annotations

from django.urls import reverse


def _where(client) -> tuple[str, str]:
    """The (title, text) of the top bar's environment label."""
    body = client.get(reverse("operations:list", args=["default"])).content.decode()
    start = body.index("<span title=", body.index('class="who"'))
    tag, text = body[start : body.index("</span>", start)].split(">", 1)
    return tag, text.strip()


def test_a_custom_endpoint_is_shown_by_its_host(viewer_client, settings):
    settings.AWS_ENDPOINT_URL = "http://127.0.0.1:5000"

    title, text = _where(viewer_client)

    assert text == "127.0.0.1:5000"
    assert "emulator" not in title


def test_without_an_endpoint_the_resolved_region_is_shown(viewer_client, settings):
    from operations.aws import client as aws_client

    settings.AWS_ENDPOINT_URL = ""
    settings.AWS_REGION = "eu-central-1"
    aws_client.reset()

    assert _where(viewer_client)[1] == "eu-central-1"
