"""Least privilege, read from what the module deploys (applied offline) for every variable
combination: who may read which secret, call which function, hold which role where."""

from __future__ import annotations

from tests.terraform.conftest import COMBOS
from tests.terraform.deployed import (
    SECRET_ACCESSOR,
    account,
    function,
    functions,
    grants,
    has_account,
    member,
    secret_ids,
    service_config,
)
from tests.terraform.offline import Planned

Combo = tuple[str, Planned]
RUNTIME_ACCOUNTS = ("run", "provision", "listen")


def runtime_members(planned: Planned) -> set[str]:
    return {member(planned, n) for n in RUNTIME_ACCOUNTS if has_account(planned, n)}


def test_every_secret_accessor_grant_is_on_one_secret_to_a_runtime_identity(
        combo: Combo) -> None:
    _, planned = combo
    accessors = [g for g in grants(planned) if g.role == SECRET_ACCESSOR]
    assert accessors
    for grant in accessors:
        # On one secret of the module, never the project (which would open every secret).
        assert grant.kind == "google_secret_manager_secret_iam_member", grant.address
        assert grant.on in secret_ids(planned), grant.address
        assert grant.member in runtime_members(planned), grant.address
    # Each runtime identity reads what its functions mount, and nothing more.
    for body in functions(planned).values():
        config = service_config(body)
        mounted = {s["secret"] for s in config.get("secret_environment_variables") or []}
        mounted |= {v["secret"] for v in config.get("secret_volumes") or []}
        runs_as = f"serviceAccount:{config['service_account_email']}"
        readable = {g.on for g in accessors if g.member == runs_as}
        assert mounted == readable


def test_the_webhook_secret_is_readable_by_the_webhook_alone(combo: Combo) -> None:
    name, planned = combo
    webhooks = planned.named("google_cloudfunctions2_function", "provision")
    assert bool(webhooks) == COMBOS[name].get("enable_provision_webhook", False)
    for body in webhooks.values():
        mounted = {s["key"]: s["secret"]
                   for s in service_config(body)["secret_environment_variables"]}
        readers = {g.member for g in grants(planned)
                   if g.role == SECRET_ACCESSOR and g.on == mounted["WEBHOOK_SECRET"]}
        assert readers == {member(planned, "provision")}


def test_project_level_roles_are_device_reads_and_build_logs_only(combo: Combo) -> None:
    name, planned = combo
    project_roles = {(g.on, g.role, g.member) for g in grants(planned)
                     if g.kind == "google_project_iam_member"}
    tfvars = COMBOS[name]
    reader_role = planned.locals["iot_project"], tfvars["iot_reader_role"]
    build = member(planned, "build")
    expected = {(tfvars["project_id"], "roles/logging.logWriter", build),
                (tfvars["project_id"], "roles/storage.objectViewer", build)}
    if tfvars.get("registry_backend", "google") == "google":
        # Reading devices has no narrower scope since provider 5 (no registry IAM resource).
        expected |= {(*reader_role, m) for m in runtime_members(planned)}
    assert project_roles == expected


def test_the_listen_workers_may_pull_their_subscription_and_read_devices_and_tokens_only(
        combo: Combo) -> None:
    name, planned = combo
    pull = COMBOS[name].get("event_delivery") == "pull"
    assert has_account(planned, "listen") is pull
    if not pull:
        return
    listen = member(planned, "listen")
    (subscription,) = planned.named("google_pubsub_subscription", "events").values()
    token_ids = set(planned.outputs["mender_token_secrets"].values())
    tokens = {s["secret_id"] for s in planned.of_type("google_secret_manager_secret").values()
              if s["id"] in token_ids}
    assert tokens
    held = {(g.kind, g.on, g.role) for g in grants(planned) if g.member == listen}
    reads_devices = planned.locals["iot_project"], COMBOS[name]["iot_reader_role"]
    assert held == {
        ("google_pubsub_subscription_iam_member", subscription["name"], "roles/pubsub.subscriber"),
        ("google_project_iam_member", *reads_devices),
        *{("google_secret_manager_secret_iam_member", t, SECRET_ACCESSOR) for t in tokens},
    }
    # Nothing on the bridge's own project, no publisher role, no act-as.
    assert not [g for g in grants(planned) if g.member == listen
                and g.kind == "google_project_iam_member" and g.on == COMBOS[name]["project_id"]]


def test_nothing_is_granted_to_the_public_or_as_a_primitive_role(combo: Combo) -> None:
    _, planned = combo
    for grant in grants(planned):
        assert not grant.member.startswith(("allUsers", "allAuthenticatedUsers")), grant
        assert grant.role not in ("roles/owner", "roles/editor", "roles/viewer"), grant
        assert not grant.role.endswith(".admin"), grant


def test_functions_run_as_the_module_accounts_and_only_the_invoker_calls_the_internal_ones(
        combo: Combo) -> None:
    _, planned = combo
    own = {account(planned, n)["email"] for n in RUNTIME_ACCOUNTS if has_account(planned, n)}
    build = account(planned, "build")["id"]
    for address, body in functions(planned).items():
        config = service_config(body)
        assert config["service_account_email"] in own, address
        assert body["build_config"][0]["service_account"] == build, address
    callers: dict[str, set[str]] = {}
    for grant in grants(planned):
        if grant.kind == "google_cloud_run_v2_service_iam_member":
            assert grant.role == "roles/run.invoker"
            callers.setdefault(grant.on, set()).add(grant.member)
    for name in ("events", "reconcile"):
        if planned.named("google_cloudfunctions2_function", name):
            body = function(planned, name)
            assert service_config(body)["ingress_settings"] == "ALLOW_INTERNAL_ONLY"
            assert callers.pop(service_config(body)["service"]) == {member(planned, "invoker")}
    # What remains is the webhook, called by the identities named in provision_invokers.
    for service, members in callers.items():
        assert service == service_config(function(planned, "provision"))["service"]
        assert members == set(COMBOS[combo[0]]["provision_invokers"])


def test_the_runtime_identities_only_read(combo: Combo) -> None:
    name, planned = combo
    reading = {SECRET_ACCESSOR, COMBOS[name]["iot_reader_role"], "roles/pubsub.subscriber"}
    for identity in runtime_members(planned):
        assert {g.role for g in grants(planned) if g.member == identity} <= reading
