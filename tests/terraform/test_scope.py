"""The scope of the deployed bridge (issue 13): the Logging sink forwards only the audit entries
of the configured project, location and registries, tried on the captured CreateDevice entry
and entries derived from it, and every function and worker reads the same scope from its
environment (bridge.config), so the sink and the bridge's own check agree."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

import pytest

from bridge.config import Settings
from bridge.model import RegistryRef
from tests.fixtures import audit_entry
from tests.terraform.conftest import BASE, COMBOS, GOOGLE, TARGETS
from tests.terraform.deployed import environment_with_secrets, functions
from tests.terraform.offline import OfflineModule, Planned

# A tiny evaluator of the Logging query subset the module writes (clauses joined by AND, each
# `path="value"` or `path=("a" OR "b")`): enough to try the filter on entries.
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


def entry(*, project: str | None = None, location: str | None = None,
          registry: str | None = None, method: str | None = None) -> dict[str, Any]:
    """The captured entry, moved to another project, location, registry or method (no
    captured sample of those exists)."""
    derived = audit_entry()
    labels = derived["resource"]["labels"]
    if project is not None:
        derived["logName"] = derived["logName"].replace(labels["project_id"], project)
        labels["project_id"] = project
    labels["location"] = location or labels["location"]
    labels["device_registry_id"] = registry or labels["device_registry_id"]
    if method is not None:
        derived["protoPayload"]["methodName"] = f"google.cloud.iot.v1.DeviceManager.{method}"
    return derived


def sink_filter(planned: Planned) -> str:
    filt = planned.one("google_logging_project_sink", "device_events")["filter"]
    assert isinstance(filt, str)
    return filt


def test_the_sink_forwards_the_configured_registries_of_the_location_and_nothing_else(
        offline: OfflineModule) -> None:
    tfvars = COMBOS["google+push"]
    filt = sink_filter(offline.plan(tfvars))
    assert matches(filt, entry())  # the captured entry itself
    for registry in tfvars["iot_registries"]:
        assert matches(filt, entry(registry=registry)), registry
    # The same project's other registries, a prefix of one, the same name in another region,
    # another project: none reaches the bridge.
    for outside in (entry(registry="custodian-2"), entry(registry="field"),
                    entry(location="us-central1"), entry(project="someone-else")):
        assert not matches(filt, outside)


def test_with_no_registry_configured_the_scope_is_the_whole_location(
        offline: OfflineModule) -> None:
    filt = sink_filter(offline.plan(COMBOS["google+push+webhook+all-registries"]))
    assert matches(filt, entry(registry="any-registry"))
    assert not matches(filt, entry(registry="any-registry", location="us-central1"))
    assert not matches(filt, entry(project="someone-else"))


def test_with_mender_targets_the_scope_is_the_targets_registries(
        offline: OfflineModule) -> None:
    filt = sink_filter(offline.plan(COMBOS["google+pull+targets+webhook"]))
    for target in TARGETS:
        for registry in target["registries"]:
            assert matches(filt, entry(registry=registry)), registry
    assert not matches(filt, entry(registry="routed-nowhere"))


def test_only_the_device_changes_of_the_admin_activity_log_pass(offline: OfflineModule) -> None:
    filt = sink_filter(offline.plan(COMBOS["google+push"]))
    assert matches(filt, entry())
    for method, selected in (("UpdateDevice", True), ("DeleteDevice", True),
                             ("CreateDeviceRegistry", False), ("GetDevice", False),
                             ("ModifyCloudToDeviceConfig", False)):
        assert matches(filt, entry(method=method)) is selected, method
    data_access = entry()
    data_access["logName"] = data_access["logName"].replace("%2Factivity", "%2Fdata_access")
    assert not matches(filt, data_access)
    registry = entry()
    registry["resource"]["type"] = "cloudiot_device_registry"
    assert not matches(filt, registry)


CANDIDATES = [
    entry(project=p, location=loc, registry=r) for p, loc, r in itertools.product(
        (BASE["iot_project"], "someone-else"), (BASE["iot_location"], "us-central1"),
        ("custodian", "field-a", "field-b", "custodian-2"))]


@pytest.mark.parametrize("name", GOOGLE)
def test_the_sink_and_every_function_and_worker_agree_on_the_scope(
        offline: OfflineModule, name: str) -> None:
    planned = offline.plan(COMBOS[name])
    filt = sink_filter(planned)
    environments = [environment_with_secrets(body) for body in functions(planned).values()]
    listen = planned.outputs.get("listen_environment")
    if listen is not None:
        tokens = {k: f"stand-in value of {v}" for k, v in
                  planned.outputs["mender_token_secrets"].items()}
        environments.append({**listen, **tokens})
    assert environments
    for env in environments:
        scope = Settings.from_env(env).scope
        for candidate in CANDIDATES:
            labels = candidate["resource"]["labels"]
            ref = RegistryRef(labels["project_id"], labels["location"],
                              labels["device_registry_id"])
            assert matches(filt, candidate) is scope.covers(ref), ref


@pytest.mark.parametrize("name", [n for n in COMBOS if n not in GOOGLE])
def test_clearblade_has_no_audit_log_path_yet_reads_the_same_scope_settings(
        offline: OfflineModule, name: str) -> None:
    planned = offline.plan(COMBOS[name])
    for absent in ("google_logging_project_sink", "google_pubsub_topic",
                   "google_pubsub_subscription", "google_pubsub_topic_iam_member",
                   "google_pubsub_subscription_iam_member", "google_project_iam_member"):
        found = planned.of_type(absent)
        if absent == "google_project_iam_member":  # only the build identity's
            found = {a: g for a, g in found.items() if "read_devices" in a}
        assert not found, absent
    tfvars = COMBOS[name]
    wanted = set(tfvars.get("iot_registries") or itertools.chain.from_iterable(
        t["registries"] for t in tfvars.get("mender_targets", [])))
    for body in functions(planned).values():
        settings = Settings.from_env(environment_with_secrets(body))
        assert settings.registry_backend == "clearblade"
        assert {r.registry for r in settings.scope.refs} == wanted
        assert (settings.iot_project, settings.iot_location) == (tfvars["iot_project"],
                                                                 tfvars["iot_location"])

