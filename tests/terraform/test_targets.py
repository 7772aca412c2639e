"""Several Mender targets and inventory tags, as deployed (applied offline): one token secret
per target, and the bridge (bridge.config) reading from each function's environment exactly
the targets, registries and tokens the operator configured."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import Settings
from tests.terraform.conftest import BASE, COMBOS, TARGETS
from tests.terraform.deployed import (
    environment_with_secrets,
    functions,
    service_config,
    stand_in,
)
from tests.terraform.offline import OfflineModule

WITH_TARGETS = [n for n in COMBOS if "targets" in n]


@pytest.mark.parametrize("name", WITH_TARGETS)
def test_each_function_reads_every_target_with_its_own_token(
        offline: OfflineModule, name: str) -> None:
    planned = offline.plan(COMBOS[name])
    secrets = planned.of_type("google_secret_manager_secret")
    token_secrets = planned.outputs["mender_token_secrets"]
    assert len(set(token_secrets.values())) == len(TARGETS)
    assert set(token_secrets.values()) <= {s["id"] for s in secrets.values()}
    for address, body in functions(planned).items():
        settings = Settings.from_env(environment_with_secrets(body))
        read = [(t.name, t.mender_url, t.registries) for t in settings.targets()]
        assert read == [(t["name"], t["mender_url"], tuple(t["registries"])) for t in TARGETS]
        tokens = {t.mender_token.reveal() for t in settings.targets() if t.mender_token}
        # One distinct secret per target, each created by the module.
        assert len(tokens) == len(TARGETS), address
        assert tokens <= {stand_in(s["secret_id"]) for s in secrets.values()}
        # No single-Mender settings beside the targets (the bridge refuses both).
        env = environment_with_secrets(body)
        assert "MENDER_TOKEN" not in env and "MENDER_URL" not in env


def test_without_targets_the_single_mender_url_and_token_stay(offline: OfflineModule) -> None:
    tfvars = {**COMBOS["google+push"], "mender_url": "https://eu.hosted.mender.io"}
    planned = offline.plan(tfvars)
    for body in functions(planned).values():
        settings = Settings.from_env(environment_with_secrets(body))
        (target,) = settings.targets()
        assert target.mender_url == tfvars["mender_url"]
        assert target.mender_token is not None
        assert target.mender_token.reveal() == stand_in(planned.one(
            "google_secret_manager_secret", "this")["secret_id"])
        assert "MENDER_TARGETS" not in service_config(body)["environment_variables"]
    assert planned.outputs["mender_token_secret"] == \
        planned.one("google_secret_manager_secret", "this")["id"]


def test_tags_reach_the_functions_only_when_set(offline: OfflineModule) -> None:
    tagged = offline.plan(COMBOS["clearblade+targets+webhook"])
    for body in functions(tagged).values():
        settings = Settings.from_env(environment_with_secrets(body))
        assert settings.tags == COMBOS["clearblade+targets+webhook"]["tags"]
    untagged = offline.plan(COMBOS["clearblade"])
    for body in functions(untagged).values():
        assert "TAGS" not in service_config(body)["environment_variables"]


def targets(*items: dict[str, Any]) -> dict[str, Any]:
    return {**BASE, "mender_targets": list(items)}


ONE = {"name": "one", "mender_url": "https://one.example.com", "registries": ["reg-a"]}


@pytest.mark.parametrize(("tfvars", "message"), [
    (targets({**ONE, "name": "Prod"}), "1-31 lowercase letters"),
    (targets({**ONE, "name": "1st"}), "1-31 lowercase letters"),
    (targets({**ONE, "name": "a" * 32}), "1-31 lowercase letters"),
    (targets(ONE, {**ONE, "registries": ["reg-b"]}), "names must be unique"),
    (targets(ONE, {**ONE, "name": "two"}), "belongs to one Mender target only"),
    (targets({**ONE, "mender_url": "http://one.example.com"}), "must be an https:// URL"),
    (targets({**ONE, "registries": []}), "at least one registry"),
    ({**targets(ONE), "iot_registries": ["reg-a", "reg-b"]}, "leave iot_registries empty"),
    ({**BASE, "tags": "no pairs here"}, "name=template pairs"),
    ({**BASE, "extra_environment": {"MENDER_TOKEN_STAGING": "x"}}, "must not hold secrets"),
    ({**BASE, "extra_environment": {"MENDER_TARGETS": "[]"}}, "must not hold secrets"),
])
def test_inconsistent_targets_are_refused_before_anything_is_created(
        offline: OfflineModule, tfvars: dict[str, Any], message: str) -> None:
    result = offline.apply(tfvars)
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())
    assert "Apply complete" not in result.stdout


def test_iot_registries_may_repeat_the_targets_registries(offline: OfflineModule) -> None:
    planned = offline.plan({**targets(ONE), "iot_registries": ["reg-a"]})
    reconcile = service_config(planned.one("google_cloudfunctions2_function", "reconcile"))
    assert reconcile["environment_variables"]["IOT_REGISTRIES"] == "reg-a"
