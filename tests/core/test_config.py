"""Settings from the environment or TOML: conversion, every problem at once, secrets hidden."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from bridge.config import Settings, is_loopback
from bridge.errors import ConfigError
from bridge.identity import IdentityTemplate
from bridge.model import RegistryRef, Secret

TOKEN = "pat-SECRET-value-0123456789"
BASE = {"MENDER_TOKEN": TOKEN, "IOT_PROJECT": "my-project"}


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    return caught.value.problems


def test_defaults_and_conversions_from_env() -> None:
    s = Settings.from_env({
        **BASE, "PATH": "/usr/bin", "MENDER_URL": "https://mender.example.com",
        "IOT_REGISTRIES": " fleet-a, fleet-b ,,", "CONCURRENCY": " 8 ", "MENDER_TIMEOUT": "2.5",
        "REVOKE_REMOVED_KEYS": "no", "NOTIFY_DEVICE": "ON", "LOG_LEVEL": "debug",
        "REGISTRY_BACKEND": "Google", "IDENTITY_TEMPLATE": "id={device.num_id}",
        "MENDER_USERNAME": "",
    })
    assert s.mender_token == Secret(TOKEN)
    assert s.iot_registries == ("fleet-a", "fleet-b")
    assert (s.concurrency, s.mender_timeout, s.revoke_removed_keys, s.notify_device) == (
        8, 2.5, False, True)
    assert (s.log_level, s.registry_backend, s.mender_username) == ("DEBUG", "google", None)
    assert s.template == IdentityTemplate.parse("id={device.num_id}")
    assert (s.iot_location, s.on_delete, s.min_rsa_bits) == ("us-central1", "decommission", 2048)


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({
        "MENDER_URL": "http://mender.example.com", "CONCURRENCY": "lots", "MENDER_TIMEOUT": "nan",
        "MIN_RSA_BITS": "512", "ON_DELETE": "explode", "IDENTITY_TEMPLATE": "id={device.name}",
        "REVOKE_REMOVED_KEYS": "maybe", "REGISTRY_BACKEND": "aws", "IOT_CREDENTIALS": "key",
        "ON_BLOCKED": "x", "LOG_LEVEL": "loud", "IOT_ENDPOINT": "ftp://x",
    })
    expected = ["MENDER_URL: plain http://", "CONCURRENCY: expected a whole number",
                "MENDER_TIMEOUT: expected a number", "MIN_RSA_BITS must be",
                "ON_DELETE: expected one of", "IDENTITY_TEMPLATE: unknown identity field",
                "REVOKE_REMOVED_KEYS: expected true", "REGISTRY_BACKEND must be",
                "IOT_CREDENTIALS must be", "ON_BLOCKED: expected one of",
                "LOG_LEVEL must be", "IOT_ENDPOINT must be an https:// URL",
                "MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is required",
                "IOT_PROJECT is required"]
    for fragment in expected:
        assert sum(fragment in p for p in problems) == 1, (fragment, problems)
    assert len(problems) == len(expected)
    # Each problem names where its value came from, except the one about a missing value.
    assert all(p.endswith("(from environment)") for p in problems if "required" not in p)


@pytest.mark.parametrize(("env", "fragment"), [
    ({"CONCURRENCY": "16.5"}, "CONCURRENCY: expected a whole number"),
    ({"CONCURRENCY": "0"}, "CONCURRENCY must be between 1 and 256"),
    ({"MENDER_TIMEOUT": "inf"}, "MENDER_TIMEOUT: expected a number"),
    ({"MENDER_TIMEOUT": "-1"}, "MENDER_TIMEOUT must be a positive"),
    ({"MENDER_URL": "https://[::1"}, "MENDER_URL is not a valid URL"),
    ({"MENDER_URL": "https://h:port"}, "MENDER_URL is not a valid URL"),
    ({"MENDER_URL": "mender.example.com"}, "MENDER_URL must be an https:// URL"),
    ({"MENDER_URL": f"https://admin:{TOKEN}@mender.example.com"}, "user name or password"),
    ({"MENDER_USERNAME": "me"}, "MENDER_TOKEN and MENDER_USERNAME/MENDER_PASSWORD: give one"),
    ({"MENDER_CA_BUNDLE": "/nonexistent/ca.pem"}, "MENDER_CA_BUNDLE: no such file"),
    ({"REGISTRY_BACKEND": "clearblade"}, "CLEARBLADE_CONFIGURATION"),
])
def test_single_problem(env: dict[str, str], fragment: str) -> None:
    problems = problems_of({**BASE, **env})
    assert len(problems) == 1 and fragment in problems[0], problems
    assert TOKEN not in problems[0]


@pytest.mark.parametrize(("url", "ok"), [
    ("http://127.0.0.1:8080", True), ("http://localhost/", True), ("http://[::1]:9/", True),
    ("http://127.1.2.3", True), ("https://mender.example.com", True),
    ("http://10.0.0.1", False), ("http://localhost.evil.example", False),
    ("http://mender.example.com", False),
])
def test_plain_http_only_to_loopback(url: str, ok: bool) -> None:
    env = {**BASE, "MENDER_URL": url, "IOT_ENDPOINT": url}
    if ok:
        assert Settings.from_env(env).iot_endpoint == url
    else:
        assert len(problems_of(env)) == 2


def test_loopback_names() -> None:
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("example.com") and not is_loopback("192.168.1.1")


def test_user_and_password_instead_of_token() -> None:
    s = Settings.from_env({"IOT_PROJECT": "my-project", "MENDER_USERNAME": "a@b.c",
                           "MENDER_PASSWORD": "hunter2-secret"})
    assert s.mender_password == Secret("hunter2-secret") and s.mender_token is None
    assert "hunter2" not in repr(s) and "hunter2" not in str(s)


def test_secrets_never_in_repr_str_or_errors() -> None:
    s = Settings.from_env({**BASE, "WEBHOOK_SECRET": "hook-SECRET-42"})
    for text in (repr(s), str(s), f"{s}", repr(s.mender_token), f"{s.webhook_secret}"):
        assert TOKEN not in text and "hook-SECRET-42" not in text
    assert s.mender_token is not None and s.mender_token.reveal() == TOKEN
    problems = problems_of({**BASE, "MENDER_USERNAME": "u", "MENDER_PASSWORD": "pw-SECRET"})
    assert all(TOKEN not in p and "pw-SECRET" not in p for p in problems)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_with_lower_case_names_and_env_override(tmp_path: Path) -> None:
    path = write(tmp_path, f'''
mender_url = "https://127.0.0.1:8443"
mender_token = "{TOKEN}"
iot_project = "from-toml"
iot_registries = ["fleet-a", "fleet-b"]
concurrency = 4
mender_timeout = 3
revoke_removed_keys = false
''')
    s = Settings.from_toml(path, env={"IOT_PROJECT": "from-env", "CONCURRENCY": "",
                                      "HOME": "/root"})
    assert (s.iot_project, s.iot_registries, s.concurrency) == (
        "from-env", ("fleet-a", "fleet-b"), 4)
    assert (s.mender_timeout, s.revoke_removed_keys) == (3.0, False)
    assert Settings.from_toml(path).iot_project == "from-toml"


def test_toml_unknown_and_invalid_settings_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, 'MENDER_URL = "x"\nconcurrency = 2.5\nmin_rsa_bits = true\n'
                           'iot_project = ["p"]\n')
    with pytest.raises(ConfigError) as caught:
        Settings.from_toml(path)
    problems = caught.value.problems
    assert any("unknown setting 'MENDER_URL'" in p for p in problems)
    assert any(p.startswith("CONCURRENCY: expected a whole number") for p in problems)
    assert any(p.startswith("MIN_RSA_BITS: expected a whole number") for p in problems)
    assert any(p.startswith("IOT_PROJECT: expected a string") for p in problems)
    assert any("MENDER_TOKEN" in p for p in problems)


@pytest.mark.parametrize(("content", "fragment"), [
    (b'mender_url = "unterminated\n', "not valid TOML"),
    (b"\xff\xfe garbage", "not UTF-8"),
])
def test_unreadable_toml(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_toml(path)
    with pytest.raises(ConfigError, match="does not exist or is not a regular file"):
        Settings.from_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="does not exist or is not a regular file"):
        Settings.from_toml(tmp_path)


def test_from_mapping_accepts_typed_values_and_every_field_has_an_env_name() -> None:
    s = Settings.from_mapping({"mender_token": Secret(TOKEN), "iot_project": "my-project",
                               "concurrency": 3, "notify_device": True})
    assert (s.mender_token, s.concurrency, s.notify_device) == (Secret(TOKEN), 3, True)
    names = {f.name for f in fields(Settings)}
    assert all(n == n.lower() and n.isidentifier() for n in names)
    assert Settings.from_env({k.upper(): "" for k in names} | BASE).concurrency == 16


def test_registries_by_short_name_or_full_path() -> None:
    full = "projects/other-project/locations/asia-east1/registries/fleet-b"
    settings = Settings.from_env({**BASE, "IOT_LOCATION": "europe-west1",
                                  "IOT_REGISTRIES": f"fleet-a, {full}"})
    assert settings.registry_refs == [
        RegistryRef("my-project", "europe-west1", "fleet-a"),
        RegistryRef("other-project", "asia-east1", "fleet-b")]


@pytest.mark.parametrize("bad", ["a/b", "projects//locations/l/registries/reg",
                                 "x/my-project/locations/l/registries/reg", "ab",
                                 "projects/../locations/../registries/..", "reg?fieldMask=x"])
def test_malformed_configured_registry_is_a_config_problem(bad: str) -> None:
    problems = problems_of({**BASE, "IOT_REGISTRIES": f"fleet-a,{bad}"})
    assert len(problems) == 1 and problems[0].startswith("IOT_REGISTRIES entry"), problems
    assert problems[0].endswith("(from environment)")


def test_environment_and_file_problems_name_their_source(tmp_path: Path) -> None:
    path = write(tmp_path, 'mender_token = "t-123456"\niot_project = "my-project"\n'
                           'min_rsa_bits = 512\n')
    with pytest.raises(ConfigError) as caught:
        Settings.from_toml(path, env={"CONCURRENCY": "lots"})
    assert sorted(caught.value.problems) == sorted([
        "CONCURRENCY: expected a whole number, got 'lots' (from environment)",
        f"MIN_RSA_BITS must be between 1024 and 16384, not 512 (from {path})"])


def test_a_secret_an_http_header_cannot_carry_is_a_config_problem() -> None:
    problems = problems_of({**BASE, "MENDER_TOKEN": "tok\u00e9n-\u2603-value"})
    assert problems == ["MENDER_TOKEN: contains characters an HTTP header cannot carry "
                        "(not Latin-1); check the value (from environment)"]


def test_secret_values_are_the_set_secrets_only() -> None:
    settings = Settings.from_env({**BASE, "WEBHOOK_SECRET": "hook-secret"})
    assert settings.secret_values() == [TOKEN, "hook-secret"]
