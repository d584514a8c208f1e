"""``manage.py devstack`` option handling (the command itself only wires infra/devstack)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from infra.devstack.main import build_parser, options_from


def test_devstack_command_rejects_a_poison_share_above_one() -> None:
    with pytest.raises(CommandError, match="poison_share"):
        call_command("devstack", "--poison", "2")


def test_cli_options_map_to_devstack_options() -> None:
    args = build_parser().parse_args(["--port", "5055", "--no-traffic", "--seed", "3"])

    options = options_from(args)

    assert (options.port, options.traffic, options.seed) == (5055, False, 3)
    assert options.host == "127.0.0.1"


def test_devstack_command_refuses_a_moto_without_what_the_emulator_patches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.xray.responses import XRayResponse

    from infra.devstack.emulator import moto_version

    monkeypatch.delattr(XRayResponse, "get_trace_summaries")

    with pytest.raises(CommandError, match=f"moto {moto_version()} is not compatible"):
        call_command("devstack", "--port", "0", "--no-traffic")
