from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dashboard.env import env_bool, env_float, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent


def test_env_bool_reads_common_spellings():
    assert env_bool("X", False, {"X": "Yes"}) is True
    assert env_bool("X", True, {"X": "off"}) is False


def test_env_bool_rejects_anything_else():
    with pytest.raises(ImproperlyConfigured, match="X must be one of"):
        env_bool("X", False, {"X": "maybe"})


def test_env_int_rejects_non_integers():
    with pytest.raises(ImproperlyConfigured, match="X must be an integer"):
        env_int("X", 1, {"X": "15s"})


def test_env_int_enforces_bounds():
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("X", 5, {"X": "0"}, minimum=1)


def test_env_float_rejects_nan():
    with pytest.raises(ImproperlyConfigured, match="finite"):
        env_float("X", 1.0, {"X": "nan"})


def test_unset_or_blank_values_give_the_default():
    assert env_int("X", 7, {"X": "  "}) == 7
    assert env_str("X", "d", {}) == "d"


def test_env_list_splits_and_strips():
    assert env_list("X", [], {"X": " a, b ,,c "}) == ["a", "b", "c"]


def _run_settings(
    extra_env: dict[str, str], code: str = "print('ok')"
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL"}
    }
    env.update({"DJANGO_SETTINGS_MODULE": "dashboard.settings", **extra_env})
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_refuse_to_start_without_secret_key():
    result = _run_settings({"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_a_bad_value_stops_startup_with_the_variable_named():
    result = _run_settings({"EVENTOPS_CACHE_TTL": "fifteen"})
    assert result.returncode != 0
    assert "EVENTOPS_CACHE_TTL must be an integer" in result.stderr


def test_check_deploy_is_clean_with_production_like_settings():
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DEBUG": "false",
            "SECRET_KEY": "a-long-random-production-secret-key-" + "x" * 40,
            "ALLOWED_HOSTS": "eventops.example.com",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_no_region_variable_leaves_the_region_to_the_profile():
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL"}
        and k not in {"AWS_REGION", "AWS_DEFAULT_REGION"}
    }
    env["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(repr(settings.AWS_REGION))"
    )
    unset = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    default = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert unset.stdout.strip() == "''"
    assert default.stdout.strip() == "'eu-west-1'"


def _production_start(
    extra_env: dict[str, str], args: tuple[str, ...] = ("manage.py", "check")
) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` (or ``args``) as a production start: no DEBUG, no SECRET_KEY, not
    under pytest."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "PYTEST_VERSION"}
    }
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_debug_is_off_unless_set_so_a_start_without_secret_key_stops_in_one_line():
    result = _production_start({})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "eventops: configuration error: SECRET_KEY is required when DEBUG is off (set "
        "SECRET_KEY to a long random value, or DEBUG=true for local development only)"
    ]


def test_debug_true_still_starts_without_secret_key():
    assert _production_start({"DEBUG": "true"}).returncode == 0


def _setting(expression: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"from django.conf import settings; print({expression})"
    return _run_settings({"DEBUG": "true", **extra_env}, code)


def test_the_providers_origin_may_receive_the_logout_form():
    result = _setting(
        "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']",
        {
            "OIDC_RP_CLIENT_ID": "eventops",
            "OIDC_OP_DISCOVERY_URL": "https://idp.example.com/realms/x/.well-known/openid-configuration",
        },
    )
    assert result.stdout.strip() == "[\"'self'\", 'https://idp.example.com']", result.stderr


def test_single_sign_on_needs_its_provider():
    result = _setting("1", {"OIDC_RP_CLIENT_ID": "eventops"})
    assert result.returncode != 0 and "set OIDC_OP_DISCOVERY_URL too" in result.stderr


def test_turning_passwords_off_needs_single_sign_on():
    result = _setting("1", {"EVENTOPS_PASSWORD_LOGIN": "false"})
    assert result.returncode != 0 and "leaves no way to sign in" in result.stderr


def test_the_wsgi_entry_point_stops_in_one_line_too():
    result = _production_start({}, ("-c", "import dashboard.wsgi"))
    assert result.returncode == 2
    assert result.stderr.startswith("eventops: configuration error: SECRET_KEY is required")
    assert len(result.stderr.splitlines()) == 1
