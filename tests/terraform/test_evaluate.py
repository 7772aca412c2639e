"""The module's input validations, evaluated by the real `terraform` binary on the module
applied offline; the example tfvars files; `terraform fmt`."""

from __future__ import annotations

import shutil
from typing import Any

import hcl2
import pytest

from tests.terraform.conftest import BASE, MODULE, unquote
from tests.terraform.deployed import functions, service_config
from tests.terraform.offline import OfflineModule, terraform

EXAMPLES = MODULE / "examples"


@pytest.mark.parametrize(("override", "message"), [
    ({"extra_environment": {"MENDER_TOKEN": "x"}}, "must not hold secrets"),
    ({"extra_environment": {"WEBHOOK_SECRET": "x"}}, "must not hold secrets"),
    ({"extra_environment": {"CLEARBLADE_CONFIGURATION": "/x"}}, "must not hold secrets"),
    ({"provision_invokers": ["allUsers"]}, "allUsers and allAuthenticatedUsers are refused"),
    ({"provision_invokers": ["allAuthenticatedUsers"]}, "are refused"),
    ({"max_delivery_attempts": 4}, "from 5 to 100"),
    ({"max_delivery_attempts": 101}, "from 5 to 100"),
    ({"mender_url": "http://mender.example.com"}, "must be an https:// URL"),
    ({"iot_reader_role": "roles/editor"}, "must be read-only"),
    ({"event_delivery": "poll"}, "must be 'push', 'pull' or 'eventarc'"),
    ({"registry_backend": "aws"}, "must be 'google' or 'clearblade'"),
    ({"iot_registries": ["ok-registry", 'x" OR logName:"']}, "starts with a letter"),
    ({"reconcile_timeout_seconds": 3600}, "between 60 and 1800"),
    ({"clearblade_reconcile_schedule": "every 5 minutes"}, "five-field cron expression"),
])
def test_unsafe_inputs_are_refused(offline: OfflineModule, override: dict[str, Any],
                                   message: str) -> None:
    result = offline.apply({**BASE, **override})
    assert result.returncode != 0
    assert message in " ".join((result.stdout + result.stderr).split())


def load_tfvars(name: str) -> dict[str, Any]:
    with (EXAMPLES / name).open(encoding="utf-8") as handle:
        values = unquote(hcl2.load(handle))
    return {k: v for k, v in values.items() if not k.startswith("__")}


def test_the_complete_example_sets_every_input_and_passes_validation(
        offline: OfflineModule) -> None:
    with (MODULE / "variables.tf").open(encoding="utf-8") as handle:
        declared = {k for item in hcl2.load(handle)["variable"] for k in unquote(item)}
    assert set(load_tfvars("terraform.tfvars.example")) == declared
    planned = offline.plan({}, [EXAMPLES / "terraform.tfvars.example"])
    assert planned.named("google_cloudfunctions2_function", "provision")


def test_the_pull_example_deploys_a_subscription_and_an_account_for_listen_workers(
        offline: OfflineModule) -> None:
    planned = offline.plan({}, [EXAMPLES / "pull.tfvars"])
    assert planned.outputs["pull_subscription"]
    assert planned.outputs["listen_service_account"]
    assert planned.outputs["listen_environment"]["PUBSUB_SUBSCRIPTION"] == \
        planned.outputs["pull_subscription"]
    assert not planned.named("google_cloudfunctions2_function", "events")


def test_the_clearblade_example_polls_two_mender_targets(offline: OfflineModule) -> None:
    example = load_tfvars("clearblade-two-targets.tfvars")
    planned = offline.plan({}, [EXAMPLES / "clearblade-two-targets.tfvars"])
    assert example["registry_backend"] == "clearblade" and len(example["mender_targets"]) == 2
    assert not planned.of_type("google_logging_project_sink")
    assert len(planned.outputs["mender_token_secrets"]) == 2
    assert planned.outputs["clearblade_configuration_secret"]
    for body in functions(planned).values():
        assert service_config(body)["secret_volumes"]


def test_terraform_fmt_is_clean() -> None:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI script warns about it)")
    result = terraform(binary, MODULE, "fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, result.stdout
