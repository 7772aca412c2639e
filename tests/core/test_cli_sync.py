"""`mender-bridge sync` / `device` argument and configuration handling, before any remote call."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli.sync import registry_refs
from bridge.config import Settings
from bridge.model import RegistryRef

CONFIG = ('mender_url = "https://mender.example.com"\nmender_token = "pat"\n'
          'iot_project = "p"\niot_location = "europe-west1"\niot_registries = ["a", "b"]\n')


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_registry_names_and_paths(config: Path) -> None:
    settings = Settings.from_toml(config)
    assert registry_refs(settings, ()) == [RegistryRef("p", "europe-west1", "a"),
                                           RegistryRef("p", "europe-west1", "b")]
    assert registry_refs(settings, ("projects/q/locations/asia-east1/registries/c",)) == [
        RegistryRef("q", "asia-east1", "c")]


def test_device_needs_one_registry(config: Path) -> None:
    result = CliRunner().invoke(cli, ["device", "dev1", "--config", str(config)])
    assert result.exit_code == 2 and "--registry" in result.output


def test_bad_registry_path_is_a_usage_error(config: Path) -> None:
    result = CliRunner().invoke(cli, ["sync", "--config", str(config), "--registry", "a/b"])
    assert result.exit_code == 2 and "not a registry name or path" in result.output


def test_missing_settings_from_the_environment() -> None:
    result = CliRunner().invoke(cli, ["sync"], env={"MENDER_URL": "", "MENDER_TOKEN": ""})
    assert result.exit_code == 2
    assert result.output.startswith("mender-bridge: error:") and "MENDER_TOKEN" in result.output


def test_prune_of_some_registries_only_is_refused(config: Path) -> None:
    result = CliRunner().invoke(cli, ["sync", "--config", str(config), "--registry", "a",
                                      "--prune"])
    assert result.exit_code == 2 and "other registries" in result.output
