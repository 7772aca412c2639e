"""Questions the Terraform tests ask about what the module deploys (a `Planned`): who is
granted what on which resource, and which settings each function or worker reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.terraform.offline import Planned

# The argument naming the resource an *_iam_member grant is scoped to, by resource type.
SCOPE_ARGUMENT = {
    "google_project_iam_member": "project",
    "google_secret_manager_secret_iam_member": "secret_id",
    "google_pubsub_topic_iam_member": "topic",
    "google_pubsub_subscription_iam_member": "subscription",
    "google_cloud_run_v2_service_iam_member": "name",
    "google_service_account_iam_member": "service_account_id",
    "google_artifact_registry_repository_iam_member": "repository",
}
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"


@dataclass(frozen=True)
class Grant:
    address: str
    kind: str  # the resource type of the grant
    on: str  # the value naming what it is granted on (a project, a secret ID, a topic...)
    role: str
    member: str


def grants(planned: Planned) -> list[Grant]:
    found = []
    for address, body in planned.resources.items():
        kind = address.split(".")[0]
        if kind.endswith(("_iam_binding", "_iam_policy")):
            raise AssertionError(f"{address}: authoritative IAM would remove others' grants")
        if kind.endswith("_iam_member"):
            assert kind in SCOPE_ARGUMENT, f"{address}: unknown IAM resource type"
            found.append(Grant(address, kind, body[SCOPE_ARGUMENT[kind]], body["role"],
                               body["member"]))
    return found


def account(planned: Planned, name: str) -> dict[str, Any]:
    return planned.one("google_service_account", name)


def member(planned: Planned, name: str) -> str:
    return f"serviceAccount:{account(planned, name)['email']}"


def has_account(planned: Planned, name: str) -> bool:
    return bool(planned.named("google_service_account", name))


def function(planned: Planned, name: str) -> dict[str, Any]:
    return planned.one("google_cloudfunctions2_function", name)


def functions(planned: Planned) -> dict[str, dict[str, Any]]:
    return planned.of_type("google_cloudfunctions2_function")


def service_config(body: dict[str, Any]) -> dict[str, Any]:
    (config,) = body["service_config"]
    assert isinstance(config, dict)
    return config


def stand_in(secret_id: str) -> str:
    return f"stand-in value of {secret_id}"


def environment_with_secrets(body: dict[str, Any]) -> dict[str, str]:
    """A function's environment as its process sees it, each secret variable holding a
    stand-in naming the secret it comes from."""
    config = service_config(body)
    env = dict(config.get("environment_variables") or {})
    for item in config.get("secret_environment_variables") or []:
        assert item["key"] not in env, f"{item['key']} is both plain and secret"
        env[item["key"]] = stand_in(item["secret"])
    return env


def secret_ids(planned: Planned) -> set[str]:
    return {s["secret_id"] for s in planned.of_type("google_secret_manager_secret").values()}
