"""The module's expressions and input validations, evaluated by the real `terraform` binary
(offline: only variables.tf and locals.tf, which need no provider), and `terraform fmt`."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.terraform.conftest import MODULE, REPO, Evaluator, unquote

BASE = {"project_id": "acme-fleet-prod"}
METHOD = re.compile(r'"(google\.cloud\.iot\.v1\.DeviceManager\.\w+)"')


def test_the_evaluated_sink_filter_selects_exactly_the_three_methods(
        evaluator: Evaluator) -> None:
    out = evaluator.outputs({**BASE, "iot_project": "acme-iot"})
    filt = out["sink_filter"]
    assert sorted(METHOD.findall(filt)) == [
        "google.cloud.iot.v1.DeviceManager.CreateDevice",
        "google.cloud.iot.v1.DeviceManager.DeleteDevice",
        "google.cloud.iot.v1.DeviceManager.UpdateDevice",
    ]
    assert 'logName="projects/acme-iot/logs/cloudaudit.googleapis.com%2Factivity"' in filt
    assert 'resource.type="cloudiot_device"' in filt
    # The methods are alternatives of one condition, ANDed with the others.
    assert "protoPayload.methodName=(" in filt and filt.count(" OR ") == 2


def test_the_function_environment_is_the_bridge_settings_without_secrets(
        evaluator: Evaluator) -> None:
    out = evaluator.outputs({**BASE, "iot_registries": ["a-reg", "b-reg"],
                             "extra_environment": {"MIN_RSA_BITS": "3072"}})
    env = out["environment"]
    assert env["IOT_PROJECT"] == "acme-fleet-prod"
    assert env["IOT_REGISTRIES"] == "a-reg,b-reg"
    assert env["MIN_RSA_BITS"] == "3072"
    assert env["REVOKE_REMOVED_KEYS"] == "true"
    assert not {"MENDER_TOKEN", "MENDER_PASSWORD", "WEBHOOK_SECRET"} & set(env)
    # Every name is a field of bridge.config.Settings, upper-cased.
    from dataclasses import fields

    from bridge.config import Settings

    assert set(env) <= {f.name.upper() for f in fields(Settings)}
    # No registry given: the setting is left out, which the bridge reads as "every registry".
    assert "IOT_REGISTRIES" not in evaluator.outputs(BASE)["environment"]


def test_push_delivery_needs_no_eventarc_api(evaluator: Evaluator) -> None:
    push = evaluator.outputs(BASE)
    assert push["push_delivery"] is True
    assert "eventarc.googleapis.com" not in push["services"]
    eventarc = evaluator.outputs({**BASE, "event_delivery": "eventarc"})
    assert eventarc["push_delivery"] is False
    assert "eventarc.googleapis.com" in eventarc["services"]


@pytest.mark.parametrize(("override", "message"), [
    ({"extra_environment": {"MENDER_TOKEN": "x"}}, "must not hold secrets"),
    ({"extra_environment": {"WEBHOOK_SECRET": "x"}}, "must not hold secrets"),
    ({"provision_invokers": ["allUsers"]}, "allUsers and allAuthenticatedUsers are refused"),
    ({"provision_invokers": ["allAuthenticatedUsers"]}, "are refused"),
    ({"max_delivery_attempts": 4}, "from 5 to 100"),
    ({"max_delivery_attempts": 101}, "from 5 to 100"),
    ({"mender_url": "http://mender.example.com"}, "must be an https:// URL"),
    ({"iot_reader_role": "roles/editor"}, "must be read-only"),
    ({"event_delivery": "pull"}, "must be 'push' or 'eventarc'"),
    ({"reconcile_timeout_seconds": 3600}, "between 60 and 1800"),
])
def test_unsafe_inputs_are_refused(evaluator: Evaluator, override: dict[str, Any],
                                   message: str) -> None:
    result = evaluator.apply({**BASE, **override})
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())


def test_the_example_tfvars_sets_only_known_variables_and_passes_validation(
        evaluator: Evaluator) -> None:
    example = MODULE / "examples" / "terraform.tfvars.example"
    with example.open(encoding="utf-8") as handle:
        values = unquote(hcl2.load(handle))
    values = {k: v for k, v in values.items() if not k.startswith("__")}
    with (MODULE / "variables.tf").open(encoding="utf-8") as handle:
        declared = {k for item in hcl2.load(handle)["variable"] for k in unquote(item)}
    # "Complete": the example shows every input.
    assert set(values) == declared
    shutil.copy(example, evaluator.workdir / "example.auto.tfvars")
    try:
        result = evaluator.apply({})
    finally:
        (evaluator.workdir / "example.auto.tfvars").unlink()
    assert result.returncode == 0, result.stdout + result.stderr


def test_terraform_fmt_is_clean() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI script warns about it)")
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff", str(MODULE)],
        env={**os.environ, "CHECKPOINT_DISABLE": "1"}, capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == 0, result.stdout
    assert Path(MODULE / "versions.tf").is_file()


# --- The evaluated filter against the real CreateDevice audit entry ---------------------------
# A tiny evaluator of the Logging query subset the module writes (clauses joined by AND, each
# `path="value"` or `path=("a" OR "b")`): enough to see the filter select the real entry.

FIXTURE = REPO / "tests" / "fixtures" / "audit-log" / "create-device.json"
CLAUSE = re.compile(r'^([\w.]+)=(?:"([^"]*)"|\(((?:"[^"]*"(?: OR )?)+)\))$')


def matches(filt: str, entry: Mapping[str, Any]) -> bool:
    for clause in filt.split(" AND "):
        parsed = CLAUSE.match(clause.strip())
        assert parsed, f"clause outside the supported subset: {clause}"
        path, single, alternatives = parsed.groups()
        wanted = [single] if single is not None else re.findall(r'"([^"]*)"', alternatives)
        value: Any = entry
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in wanted:
            return False
    return True


def audit_entry() -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return entry


def test_the_filter_selects_the_real_create_device_entry_and_nothing_beside_it(
        evaluator: Evaluator) -> None:
    entry = audit_entry()
    project = entry["resource"]["labels"]["project_id"]
    filt = evaluator.outputs({**BASE, "iot_project": project})["sink_filter"]
    assert matches(filt, entry)
    # Entries derived from the real one (no captured sample of them exists): the other two
    # device methods are selected; a registry method, another log, another project are not.
    for method, selected in (("UpdateDevice", True), ("DeleteDevice", True),
                             ("CreateDeviceRegistry", False), ("GetDevice", False)):
        derived = copy.deepcopy(entry)
        derived["protoPayload"]["methodName"] = f"google.cloud.iot.v1.DeviceManager.{method}"
        assert matches(filt, derived) is selected, method
    data_access = copy.deepcopy(entry)
    data_access["logName"] = entry["logName"].replace("%2Factivity", "%2Fdata_access")
    assert not matches(filt, data_access)
    registry = copy.deepcopy(entry)
    registry["resource"]["type"] = "cloudiot_device_registry"
    assert not matches(filt, registry)
    other = evaluator.outputs({**BASE, "iot_project": "someone-else"})["sink_filter"]
    assert not matches(other, entry)
