"""How events reach the bridge, as deployed (applied offline): push to the event function, pull
by listen workers, Eventarc, or, with ClearBlade, no events and a frequent scheduled
reconcile; retries bounded by a dead-letter topic that a person or `dead-letters` can read."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import Settings
from tests.terraform.conftest import COMBOS
from tests.terraform.deployed import (
    account,
    function,
    grants,
    has_account,
    member,
    service_config,
)
from tests.terraform.offline import OfflineModule, Planned

RETRIES = {"max_delivery_attempts": 7, "retry_minimum_backoff_seconds": 5,
           "retry_maximum_backoff_seconds": 300, "ack_deadline_seconds": 90}
PUSH = {**COMBOS["google+push"], **RETRIES}
PULL = {**COMBOS["google+pull"], **RETRIES}


def subscription(planned: Planned, name: str) -> dict[str, Any]:
    return planned.one("google_pubsub_subscription", name)


def topic_id(planned: Planned, name: str) -> str:
    value = planned.one("google_pubsub_topic", name)["id"]
    assert isinstance(value, str)
    return value


def assert_bounded_retries_into_the_dead_letter_topic(planned: Planned) -> None:
    events = subscription(planned, "events")
    assert events["topic"] == topic_id(planned, "events")
    (policy,) = events["dead_letter_policy"]
    assert policy == {"dead_letter_topic": topic_id(planned, "dead_letter"),
                      "max_delivery_attempts": RETRIES["max_delivery_attempts"]}
    (retry,) = events["retry_policy"]
    assert retry == {"minimum_backoff": f"{RETRIES['retry_minimum_backoff_seconds']}s",
                     "maximum_backoff": f"{RETRIES['retry_maximum_backoff_seconds']}s"}
    # Pub/Sub's own identity moves a failing message: it publishes to the dead-letter topic
    # and acknowledges on the source subscription (both required for dead-lettering).
    agent = {(g.kind, g.on, g.role) for g in grants(planned)
             if g.member.endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")}
    assert {("google_pubsub_topic_iam_member",
             planned.one("google_pubsub_topic", "dead_letter")["name"], "roles/pubsub.publisher"),
            ("google_pubsub_subscription_iam_member", events["name"],
             "roles/pubsub.subscriber")} <= agent


def test_push_delivers_to_the_event_function_as_the_invoker_with_bounded_retries(
        offline: OfflineModule) -> None:
    planned = offline.plan(PUSH)
    assert_bounded_retries_into_the_dead_letter_topic(planned)
    events_fn = function(planned, "events")
    (push,) = subscription(planned, "events")["push_config"]
    url = service_config(events_fn)["uri"]
    assert push["push_endpoint"] == url
    assert push["oidc_token"] == [{"service_account_email": account(planned, "invoker")["email"],
                                   "audience": url}]
    assert events_fn["build_config"][0]["entry_point"] == "on_push"
    # Pub/Sub gives up on a push after the ack deadline: the function may not run longer.
    assert service_config(events_fn)["timeout_seconds"] == RETRIES["ack_deadline_seconds"]
    assert subscription(planned, "events")["ack_deadline_seconds"] == \
        RETRIES["ack_deadline_seconds"]
    assert not has_account(planned, "listen")


def test_pull_gives_listen_workers_a_subscription_an_account_and_their_settings(
        offline: OfflineModule) -> None:
    planned = offline.plan(PULL)
    assert_bounded_retries_into_the_dead_letter_topic(planned)
    events = subscription(planned, "events")
    assert not events.get("push_config")  # a pull subscription
    # No event function: the workers are the event path; the reconcile stays.
    assert not planned.named("google_cloudfunctions2_function", "events")
    assert planned.named("google_cloudfunctions2_function", "reconcile")
    outputs = planned.outputs
    assert outputs["pull_subscription"] == events["id"]
    assert outputs["listen_service_account"] == account(planned, "listen")["email"]
    assert outputs.get("event_function") is None  # null outputs are left out of the state
    # A worker given listen_environment and its token reads the subscription to pull and the
    # same settings as the functions.
    tokens = {env: f"stand-in value of {secret}"
              for env, secret in outputs["mender_token_secrets"].items()}
    worker = Settings.from_env({**outputs["listen_environment"], **tokens})
    assert worker.pubsub_subscription == events["id"]
    reconcile = service_config(function(planned, "reconcile"))["environment_variables"]
    assert {k: v for k, v in outputs["listen_environment"].items()
            if k != "PUBSUB_SUBSCRIPTION"} == reconcile
    assert {g.on for g in grants(planned) if g.member == member(planned, "listen")
            and g.role == "roles/pubsub.subscriber"} == {events["name"]}


def test_dead_letters_are_kept_for_dead_letters_list_and_replay(offline: OfflineModule) -> None:
    for tfvars in (PUSH, PULL, COMBOS["google+eventarc"]):
        planned = offline.plan(tfvars)
        keeper = subscription(planned, "dead_letter")
        assert keeper["topic"] == topic_id(planned, "dead_letter")
        assert not keeper.get("push_config")  # pulled, never pushed back automatically
        assert keeper["expiration_policy"] == [{"ttl": ""}]
        assert planned.outputs["dead_letter_subscription"] == keeper["id"]
        # `replay` republishes to the events topic, which only the sink may do by default.
        publishers = {g.member for g in grants(planned) if g.on == planned.one(
            "google_pubsub_topic", "events")["name"] and g.role == "roles/pubsub.publisher"}
        assert publishers == {planned.one("google_logging_project_sink",
                                          "device_events")["writer_identity"]}


def test_eventarc_triggers_the_cloudevent_entry_and_owns_its_subscription(
        offline: OfflineModule) -> None:
    planned = offline.plan(COMBOS["google+eventarc"])
    events_fn = function(planned, "events")
    (trigger,) = events_fn["event_trigger"]
    assert trigger["pubsub_topic"] == topic_id(planned, "events")
    assert trigger["retry_policy"] == "RETRY_POLICY_RETRY"
    assert trigger["service_account_email"] == account(planned, "invoker")["email"]
    assert events_fn["build_config"][0]["entry_point"] == "on_device_event"
    assert not planned.named("google_pubsub_subscription", "events")
    assert "eventarc.googleapis.com" in planned.locals["services"]


def test_retry_bounds_in_the_wrong_order_are_refused(offline: OfflineModule) -> None:
    result = offline.apply({**PULL, "retry_minimum_backoff_seconds": 400,
                            "retry_maximum_backoff_seconds": 300})
    assert result.returncode != 0
    assert "must not exceed retry_maximum_backoff_seconds" in " ".join(result.stderr.split())


@pytest.mark.parametrize("name", ["clearblade", "clearblade+targets+webhook"])
def test_clearblade_polls_with_the_reconcile_and_reads_its_configuration_from_a_file(
        offline: OfflineModule, name: str) -> None:
    planned = offline.plan(COMBOS[name])
    assert set(planned.of_type("google_cloudfunctions2_function")) <= {
        "google_cloudfunctions2_function.reconcile", "google_cloudfunctions2_function.provision[0]"}
    # The schedule is the primary path: by default at least every 5 minutes.
    job = planned.one("google_cloud_scheduler_job", "reconcile")
    minutes = job["schedule"].split()[0]
    assert minutes.startswith("*/") and int(minutes[2:]) <= 5
    assert job["http_target"][0]["uri"] == service_config(function(planned, "reconcile"))["uri"]
    secrets = {s["id"]: s for s in planned.of_type("google_secret_manager_secret").values()}
    secret = secrets[planned.outputs["clearblade_configuration_secret"]]
    for fn in planned.of_type("google_cloudfunctions2_function").values():
        config = service_config(fn)
        (volume,) = config["secret_volumes"]
        (version,) = volume["versions"]
        assert volume["secret"] == secret["secret_id"]
        # The file the volume provides is the file the bridge is told to read.
        assert config["environment_variables"]["CLEARBLADE_CONFIGURATION"] == \
            f"{volume['mount_path']}/{version['path']}"
    assert "pubsub.googleapis.com" not in planned.locals["services"]


def test_the_clearblade_schedule_can_be_changed_and_never_disabled(
        offline: OfflineModule) -> None:
    every_2 = offline.plan({**COMBOS["clearblade"],
                            "clearblade_reconcile_schedule": "*/2 * * * *"})
    assert every_2.one("google_cloud_scheduler_job", "reconcile")["schedule"] == "*/2 * * * *"
    # reconcile_schedule is the Google backend's safety net; null there does not stop polling.
    polling = offline.plan({**COMBOS["clearblade"], "reconcile_schedule": None})
    assert polling.named("google_cloud_scheduler_job", "reconcile")
    # null takes the default (the variable is not nullable): there is no way to stop polling.
    defaulted = offline.plan({**COMBOS["clearblade"], "clearblade_reconcile_schedule": None})
    assert defaulted.named("google_cloud_scheduler_job", "reconcile")
