"""Safety properties of the Terraform module, read from its source with python-hcl2: what a
reviewer would check by hand (retries bounded, identities dedicated, secrets only as secrets,
nothing public, least privilege, every input documented)."""

from __future__ import annotations

import re

import pytest

from tests.terraform.conftest import MODULE, REPO, Config, block, blocks

DEVICE_METHODS = {
    "google.cloud.iot.v1.DeviceManager.CreateDevice",
    "google.cloud.iot.v1.DeviceManager.UpdateDevice",
    "google.cloud.iot.v1.DeviceManager.DeleteDevice",
}
SECRET_SETTINGS = {"MENDER_TOKEN", "MENDER_PASSWORD", "WEBHOOK_SECRET"}
FUNCTIONS = ("events", "reconcile", "provision")


def function(tf: Config, name: str) -> dict[str, object]:
    return tf.resource(f"google_cloudfunctions2_function.{name}")


def test_sink_selects_exactly_the_three_device_methods_of_cloudiot_devices(tf: Config) -> None:
    sink = tf.resource("google_logging_project_sink.device_events")
    assert sink["filter"] == "${local.sink_filter}"
    assert sink["unique_writer_identity"] is True
    assert set(tf.locals["device_methods"]) == DEVICE_METHODS
    assert len(tf.locals["device_methods"]) == 3
    filt = tf.locals["sink_filter"]
    assert 'resource.type=\\"cloudiot_device\\"' in filt
    assert "local.device_methods" in filt
    assert "cloudaudit.googleapis.com%2Factivity" in filt


def test_only_the_sink_identity_may_publish_device_events(tf: Config) -> None:
    grants = [g for g in tf.of_type("google_pubsub_topic_iam_member").values()
              if g["topic"] == "${google_pubsub_topic.events.name}"]
    assert [g["member"] for g in grants] == [
        "${google_logging_project_sink.device_events.writer_identity}"]
    assert grants[0]["role"] == "roles/pubsub.publisher"


def test_push_delivery_is_the_default_and_its_retries_end_in_a_dead_letter_topic(
        tf: Config) -> None:
    assert tf.variables["event_delivery"]["default"] == "push"
    sub = tf.resource("google_pubsub_subscription.events_push")
    assert sub["topic"] == "${google_pubsub_topic.events.id}"
    dead = block(sub, "dead_letter_policy")
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert dead["max_delivery_attempts"] == "${var.max_delivery_attempts}"
    retry = block(sub, "retry_policy")
    assert "retry_minimum_backoff_seconds" in retry["minimum_backoff"]
    assert "retry_maximum_backoff_seconds" in retry["maximum_backoff"]
    ordered = block(block(sub, "lifecycle"), "precondition")["condition"]
    assert ordered == ("${var.retry_minimum_backoff_seconds <= "
                       "var.retry_maximum_backoff_seconds}")
    attempts = tf.variables["max_delivery_attempts"]
    assert attempts["default"] == 10
    assert "<= 100" in block(attempts, "validation")["condition"]
    # The push goes to the function's own URL, authenticated as the invoker account.
    push = block(sub, "push_config")
    assert "google_cloudfunctions2_function.events" in push["push_endpoint"]
    token = block(push, "oidc_token")
    assert token["service_account_email"] == "${google_service_account.invoker.email}"


def test_dead_letters_are_kept_and_pubsub_may_move_them(tf: Config) -> None:
    keeper = tf.resource("google_pubsub_subscription.dead_letter")
    assert keeper["topic"] == "${google_pubsub_topic.dead_letter.id}"
    assert "push_config" not in keeper  # pulled by a person, never pushed back automatically
    publisher = tf.resource("google_pubsub_topic_iam_member.pubsub_dead_letters")
    assert publisher["topic"] == "${google_pubsub_topic.dead_letter.name}"
    assert publisher["member"] == "${local.pubsub_service_agent}"
    subscriber = tf.resource("google_pubsub_subscription_iam_member.pubsub_acks_dead_letters")
    assert subscriber["subscription"] == "${google_pubsub_subscription.events_push[0].name}"
    assert subscriber["role"] == "roles/pubsub.subscriber"


def test_the_event_function_retries_in_eventarc_mode_and_answers_push_otherwise(
        tf: Config) -> None:
    events = function(tf, "events")
    entry = block(events, "build_config")["entry_point"]
    assert "on_push" in entry and "on_device_event" in entry
    trigger = blocks(events, "dynamic")[0]["event_trigger"]
    assert trigger["for_each"].startswith("${local.push_delivery ? []")
    content = block(trigger, "content")
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    assert content["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert content["service_account_email"] == "${google_service_account.invoker.email}"
    # The push timeout (ack deadline) and the function timeout are the same number.
    assert block(events, "service_config")["timeout_seconds"] == "${var.ack_deadline_seconds}"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_runs_and_builds_as_a_dedicated_service_account(
        tf: Config, name: str) -> None:
    fn = function(tf, name)
    runtime_sa = block(fn, "service_config")["service_account_email"]
    assert re.fullmatch(r"\$\{google_service_account\.(run|provision\[0\])\.email\}", runtime_sa)
    assert block(fn, "build_config")["service_account"] == "${local.build_sa}"
    assert tf.locals["build_sa"] == "${google_service_account.build.id}"
    text = "".join(tf.text.values())
    assert "compute@developer.gserviceaccount.com" not in text
    assert "appspot.gserviceaccount.com" not in text


@pytest.mark.parametrize("name", FUNCTIONS)
def test_the_token_reaches_each_function_only_as_a_secret(tf: Config, name: str) -> None:
    config = block(function(tf, name), "service_config")
    secrets = {s["key"]: s for s in blocks(config, "secret_environment_variables")}
    assert "MENDER_TOKEN" in secrets
    token = secrets["MENDER_TOKEN"]
    assert token["secret"] == "${google_secret_manager_secret.mender_token.secret_id}"
    assert config["environment_variables"] == "${local.environment}"
    env_keys = set(re.findall(r"\b([A-Z_]+) = ", tf.locals["environment"]))
    assert "MENDER_URL" in env_keys
    assert not env_keys & SECRET_SETTINGS


def test_no_secret_value_passes_through_terraform(tf: Config) -> None:
    assert not tf.of_type("google_secret_manager_secret_version")
    for name, variable in tf.variables.items():
        assert not re.search(r"(^|_)(token|password|secret)$", name), name
        assert variable.get("sensitive") is not True, f"{name} looks like a secret value"
    for key in ("mender_token", "webhook"):
        replication = block(tf.resource(f"google_secret_manager_secret.{key}"), "replication")
        assert "auto" in replication
    extra = " ".join(v["condition"] for v in blocks(tf.variables["extra_environment"],
                                                       "validation"))
    for secret in SECRET_SETTINGS:
        assert secret in extra


def test_each_secret_is_readable_only_by_its_runtime_accounts(tf: Config) -> None:
    grants = tf.of_type("google_secret_manager_secret_iam_member")
    readers: dict[str, set[str]] = {}
    for grant in grants.values():
        assert grant["role"] == "roles/secretmanager.secretAccessor"
        readers.setdefault(grant["secret_id"], set()).add(grant["member"])
    assert readers == {
        "${google_secret_manager_secret.mender_token.secret_id}": {
            "${local.run_member}", "${local.provision_member}"},
        "${google_secret_manager_secret.webhook[0].secret_id}": {"${local.provision_member}"},
    }


def test_nothing_is_granted_to_the_public(tf: Config) -> None:
    for address, body in tf.resources.items():
        for key in ("member", "members"):
            value = str(body.get(key, ""))
            assert "allUsers" not in value and "allAuthenticatedUsers" not in value, address
    invokers = block(tf.variables["provision_invokers"], "validation")["condition"]
    assert "serviceAccount|user|group" in invokers
    assert tf.variables["provision_invokers"]["default"] == []


def test_the_internal_functions_accept_no_internet_traffic(tf: Config) -> None:
    for name in ("events", "reconcile"):
        assert block(function(tf, name), "service_config")["ingress_settings"] == \
            "ALLOW_INTERNAL_ONLY"


def test_roles_are_the_least_each_identity_needs(tf: Config) -> None:
    allowed = {
        "${var.iot_reader_role}", "roles/pubsub.publisher", "roles/pubsub.subscriber",
        "roles/iam.serviceAccountTokenCreator", "roles/run.invoker",
        "roles/secretmanager.secretAccessor", "roles/logging.logWriter",
        "roles/storage.objectViewer", "roles/artifactregistry.writer",
    }
    grants = {a: b for a, b in tf.resources.items() if a.split(".")[0].endswith("_iam_member")}
    assert len(grants) >= 12
    assert {g["role"] for g in grants.values()} <= allowed
    # No authoritative binding or policy: they would wipe members granted outside this module.
    assert not [a for a in tf.resources if re.search(r"_iam_(binding|policy)\.", a)]
    project = tf.of_type("google_project_iam_member")
    assert {g["role"] for g in project.values()} == {
        "${var.iot_reader_role}", "roles/logging.logWriter", "roles/storage.objectViewer"}
    # Only the invoker account (and the webhook's named callers) may invoke.
    run = tf.of_type("google_cloud_run_v2_service_iam_member")
    assert {g["member"] for g in run.values()} == {"${local.invoker_member}", "${each.value}"}
    # The runtime account gets no invoker, token-creator or publisher role.
    assert not [a for a, g in grants.items() if g["member"] == "${local.run_member}"
                and g["role"] != "roles/secretmanager.secretAccessor"]
    read_only = blocks(tf.variables["iot_reader_role"], "validation")[1]["condition"]
    assert "roles/owner" in read_only and "roles/cloudiot.admin" in read_only


def test_the_scheduled_reconcile_calls_its_function_with_an_oidc_token(tf: Config) -> None:
    job = tf.resource("google_cloud_scheduler_job.reconcile")
    target = block(job, "http_target")
    assert "google_cloudfunctions2_function.reconcile" in target["uri"]
    token = block(target, "oidc_token")
    assert token["service_account_email"] == "${google_service_account.invoker.email}"
    assert block(function(tf, "reconcile"), "build_config")["entry_point"] == "reconcile"
    assert block(job, "retry_config")["retry_count"] == 1
    # One reconcile at a time.
    assert block(function(tf, "reconcile"), "service_config")["max_instance_count"] == 1


def test_the_function_source_is_the_packaged_archive_named_by_its_hash(tf: Config) -> None:
    obj = tf.resource("google_storage_bucket_object.source")
    assert "filesha256(local.source_archive)" in obj["name"]
    assert obj["source"] == "${local.source_archive}"
    assert "dist/mender-bridge-function.zip" in tf.locals["source_archive"]
    bucket = tf.resource("google_storage_bucket.source")
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["uniform_bucket_level_access"] is True
    for name in FUNCTIONS:
        source = block(block(block(function(tf, name), "build_config"), "source"),
                       "storage_source")
        assert source == {"bucket": "${local.build_source.bucket}",
                          "object": "${local.build_source.object}"}


def test_every_variable_has_a_description_and_a_type(tf: Config) -> None:
    assert len(tf.variables) >= 20
    for name, variable in tf.variables.items():
        assert str(variable.get("description", "")).strip(), f"{name} has no description"
        assert str(variable.get("type", "")).strip(), f"{name} has no type"


def test_every_output_has_a_description(tf: Config) -> None:
    assert tf.outputs
    for name, output in tf.outputs.items():
        assert str(output.get("description", "")).strip(), name


def test_versions_pin_terraform_and_a_provider_without_cloudiot_resources(tf: Config) -> None:
    settings = tf.terraform[0]
    assert settings["required_version"] == ">= 1.5.0"
    google = block(settings, "required_providers")["google"]
    assert google["source"] == "hashicorp/google"
    assert re.match(r">= 5\.", google["version"])
    assert not [a for a in tf.resources if a.startswith("google_cloudiot_")]


def test_every_resource_names_its_project(tf: Config) -> None:
    # No provider block: the module is usable as a root and as a child, so nothing may fall
    # back to a provider default project.
    assert "provider" not in "".join(tf.text.values()).split("required_providers")[-1]
    exempt = ("google_storage_bucket_object", "google_service_account_iam_member")
    for address, body in tf.resources.items():
        if address.split(".")[0] in exempt:
            continue
        assert "project" in body, f"{address} has no project"


def test_the_readme_and_the_example_cover_every_input(tf: Config) -> None:
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    example = (MODULE / "examples" / "terraform.tfvars.example").read_text(encoding="utf-8")
    for name in tf.variables:
        assert f"| `{name}` |" in readme, f"README lacks input {name}"
        assert re.search(rf"^{name}\s+=", example, re.M), f"the example lacks {name}"
    for name in tf.outputs:
        assert f"| `{name}` |" in readme, f"README lacks output {name}"
    assert "gcloud secrets versions add" in readme


def test_entry_points_and_settings_match_the_function_code(tf: Config) -> None:
    """The names Terraform passes (entry points, environment and secret variables) exist on
    the Python side, with the signature each trigger needs."""
    import ast
    from dataclasses import fields

    from bridge.config import Settings

    tree = ast.parse((REPO / "functions" / "main.py").read_text(encoding="utf-8"))
    decorated = {node.name: {ast.unparse(d) for d in node.decorator_list}
                 for node in tree.body if isinstance(node, ast.FunctionDef)}
    http = "functions_framework.http"
    assert http in decorated["on_push"]  # the push subscription posts plain HTTP
    assert http in decorated["reconcile"]  # Cloud Scheduler too
    assert http in decorated["provision"]
    assert "functions_framework.cloud_event" in decorated["on_device_event"]  # Eventarc
    entries = {block(function(tf, n), "build_config")["entry_point"] for n in FUNCTIONS}
    assert entries == {'${local.push_delivery ? "on_push" : "on_device_event"}', "reconcile",
                       "provision"}

    settings = {f.name.upper() for f in fields(Settings)}
    env_keys = set(re.findall(r"\b([A-Z_]+) = ", tf.locals["environment"]))
    assert env_keys <= settings
    for name in FUNCTIONS:
        config = block(function(tf, name), "service_config")
        assert {s["key"] for s in blocks(config, "secret_environment_variables")} <= settings
