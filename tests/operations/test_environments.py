"""The environments file: what it accepts, and how a bad one names file, environment, field."""

from __future__ import annotations

from pathlib import Path

import pytest

from operations import environments
from operations.environments import EnvironmentsFileError

GOOD = """
[environments.prod]
region = "eu-west-1"
label = "Production"
role_arn = "arn:aws:iam::111111111111:role/eventops-dashboard"
color = "red"

[environments.staging]
region = "us-west-2"
label = "Staging"
profile = "staging"
endpoint_url = "http://127.0.0.1:5000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "environments.toml"
    path.write_text(text)
    return path


def test_a_good_file_gives_every_environment_in_its_order(tmp_path: Path) -> None:
    prod, staging = environments.load(write(tmp_path, GOOD))
    assert (prod.name, prod.label, prod.color, prod.role_arn) == (
        "prod",
        "Production",
        "red",
        "arn:aws:iam::111111111111:role/eventops-dashboard",
    )
    assert (staging.profile, staging.endpoint_url, staging.where) == (
        "staging",
        "http://127.0.0.1:5000",
        "127.0.0.1:5000",
    )


def test_the_label_defaults_to_the_name(tmp_path: Path) -> None:
    (env,) = environments.load(write(tmp_path, '[environments.dr]\nregion = "eu-central-1"\n'))
    assert env.label == "dr"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[environments.prod]\nlabel = "P"\n', "[environments.prod] region: must be a Region"),
        ('[environments.prod]\nregion = "Ireland"\n', "[environments.prod] region"),
        (
            '[environments.prod]\nregion = "eu-west-1"\nrole_arn = "arn:aws:iam::1:user/x"\n',
            "[environments.prod] role_arn: must be an IAM role ARN",
        ),
        (
            '[environments.prod]\nregion = "eu-west-1"\ncolour = "red"\n',
            "[environments.prod] colour: unknown field",
        ),
        (
            '[environments.prod]\nregion = "eu-west-1"\ncolor = "chartreuse"\n',
            "[environments.prod] color: must be one of red",
        ),
        (
            '[environments.prod]\nregion = "eu-west-1"\nendpoint_url = "localhost:5000"\n',
            "[environments.prod] endpoint_url: must be an http:// or https:// URL",
        ),
        ("[environments.prod]\nregion = 5\n", "[environments.prod] region: must be a string"),
        ('[environments."Prod Env"]\nregion = "eu-west-1"\n', "[environments.Prod Env]: the name"),
        ("[environments]\n", "[environments]: no environment"),
        ('[env.prod]\nregion = "eu-west-1"\n', "[env]: unknown table"),
        ("[environments.prod\n", "not valid TOML"),
    ],
)
def test_a_bad_file_names_the_file_the_environment_and_the_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(EnvironmentsFileError) as caught:
        environments.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentsFileError, match="no such file"):
        environments.load(tmp_path / "nope.toml")


def test_without_a_file_there_is_one_environment_from_the_settings(settings) -> None:
    settings.EVENTOPS_ENVIRONMENTS_FILE = ""
    settings.AWS_REGION = "ap-southeast-2"
    settings.AWS_ENDPOINT_URL = ""
    (env,) = environments.all_environments()
    assert (env.name, env.region, env.role_arn) == ("default", "ap-southeast-2", "")


def test_the_first_environment_of_the_file_is_the_default(tmp_path: Path, settings) -> None:
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(write(tmp_path, GOOD))
    assert environments.default().name == "prod"
    assert environments.names() == ["prod", "staging"]
    assert environments.get("nope") is None


def test_activate_makes_it_current(tmp_path: Path, settings) -> None:
    settings.EVENTOPS_ENVIRONMENTS_FILE = str(write(tmp_path, GOOD))
    staging = environments.get("staging")
    assert staging is not None
    with environments.activate(staging, "alice"):
        assert environments.current() == staging
    assert environments.current().name == "prod"


def test_a_command_acts_as_the_os_user_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environments.getpass, "getuser", lambda: "bob")
    assert environments.cli_identity() == "bob"
    assert environments.cli_identity("alice") == "alice"


def test_a_bad_file_stops_startup_with_one_line_naming_it(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = write(tmp_path, '[environments.prod]\nregion = "eu-west-1"\ncolour = "red"\n')
    env = {**os.environ, "EVENTOPS_ENVIRONMENTS_FILE": str(path)}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"eventops: configuration error: {path}: [environments.prod] colour: unknown field "
        "(known: color, endpoint_url, external_id, label, profile, region, resource_prefix, "
        "role_arn)"
    ]
