"""`mender-bridge sync` / `device` argument and configuration handling, before any remote call:
each refusal is one `mender-bridge: error:` line on stderr and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli

CONFIG = ('mender_url = "https://mender.example.com"\nmender_token = "pat-123456"\n'
          'iot_project = "my-project"\niot_location = "europe-west1"\n'
          'iot_registries = ["fleet-a", "fleet-b"]\niot_credentials = "anonymous"\n')


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output.splitlines()


def test_device_needs_one_registry(config: Path) -> None:
    code, lines = run("device", "dev-1", "--config", str(config))
    assert code == 2 and lines[0] == ("mender-bridge: error: say which registry with "
                                      "--registry NAME")


@pytest.mark.parametrize(("args", "message"), [
    (["sync", "--registry", "a/b"], "registry 'a/b' is neither a registry id nor "
                                    "projects/P/locations/L/registries/R"),
    (["sync", "--registry", "other-reg"], "registry projects/my-project/locations/europe-west1"
                                          "/registries/other-reg is not one of the configured "
                                          "registries (fleet-a, fleet-b)"),
    (["device", "dev-1?fieldMask=name", "--registry", "fleet-a"],
     "device id 'dev-1?fieldMask=name' is not valid: it starts with a letter and has 3-255 "
     "letters, digits or -_.+~% (or is a numeric id)"),
])
def test_bad_names_are_usage_errors(config: Path, args: list[str], message: str) -> None:
    code, lines = run(*args, "--config", str(config))
    assert (code, lines) == (2, [f"mender-bridge: error: {message}"])


def test_missing_settings_are_one_line_each() -> None:
    code, lines = run("sync", env={"MENDER_URL": "", "MENDER_TOKEN": "", "IOT_PROJECT": "",
                                   "CONCURRENCY": "lots"})
    assert code == 2
    assert lines == [
        "mender-bridge: error: CONCURRENCY: expected a whole number, got 'lots' "
        "(from environment)",
        "mender-bridge: error: MENDER_TOKEN (or MENDER_USERNAME and MENDER_PASSWORD) is "
        "required",
        "mender-bridge: error: IOT_PROJECT is required"]


def test_prune_of_some_registries_only_is_refused(config: Path) -> None:
    code, lines = run("sync", "--config", str(config), "--registry", "fleet-a", "--prune")
    assert code == 2 and len(lines) == 1 and "prune over all of them" in lines[0]


def test_click_usage_errors_have_the_same_shape(config: Path) -> None:
    code, lines = run("sync", "--config", str(config), "--json", "--ndjson")
    assert (code, lines) == (2, ["mender-bridge: error: give --json or --ndjson, not both",
                                 "(see mender-bridge sync --help)"])
    code, lines = run("sync", "--concurrency", "0")
    assert code == 2 and lines[0].startswith("mender-bridge: error: Invalid value for "
                                             "'--concurrency'")
