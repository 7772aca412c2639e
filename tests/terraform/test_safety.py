"""Safety properties of what the module deploys (applied offline, for every combination in
COMBOS): secrets only as secrets, every resource in a named project, the archive named by its
hash, the functions' entry points and settings those of the Python code; and, read from the
source with python-hcl2, what no variable value can change: the inputs documented, no secret
value taken as an input, the provider range."""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import fields

from bridge.config import Settings
from tests.terraform.conftest import MODULE, REPO, Config, block
from tests.terraform.deployed import (
    account,
    environment_with_secrets,
    function,
    functions,
    service_config,
)
from tests.terraform.offline import OfflineModule, Planned

Combo = tuple[str, Planned]
SECRET_SETTINGS = {f.name.upper() for f in fields(Settings)
                   if "Secret" in str(f.type) and "Target" not in str(f.type)}


def test_secrets_reach_the_functions_only_from_secret_manager(combo: Combo) -> None:
    _, planned = combo
    assert not planned.of_type("google_secret_manager_secret_version")
    assert {"MENDER_TOKEN", "WEBHOOK_SECRET"} <= SECRET_SETTINGS
    settings = {f.name.upper() for f in fields(Settings)}
    for address, body in functions(planned).items():
        config = service_config(body)
        plain = set(config["environment_variables"])
        assert plain <= settings, address  # every name is a setting of the bridge
        assert not plain & SECRET_SETTINGS, address
        assert not [k for k in plain if k.startswith("MENDER_TOKEN")], address
        for item in config.get("secret_environment_variables") or []:
            assert item["key"] in SECRET_SETTINGS or item["key"].startswith("MENDER_TOKEN_")
        Settings.from_env(environment_with_secrets(body))  # complete and valid as deployed


def test_every_resource_names_its_project(combo: Combo) -> None:
    # No provider block: the module is usable as a root and as a child, so nothing may fall
    # back to a provider's default project.
    _, planned = combo
    exempt = ("google_storage_bucket_object", "google_service_account_iam_member")
    for address, body in planned.resources.items():
        if address.split(".")[0] not in exempt and not address.startswith("data."):
            assert body.get("project"), f"{address} has no project"


def test_the_functions_are_built_from_the_archive_named_by_its_hash(
        offline: OfflineModule, combo: Combo) -> None:
    _, planned = combo
    digest = hashlib.sha256(offline.archive.read_bytes()).hexdigest()
    obj = planned.one("google_storage_bucket_object", "source")
    assert digest in obj["name"]
    bucket = planned.one("google_storage_bucket", "source")
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["uniform_bucket_level_access"] is True
    for body in functions(planned).values():
        (source,) = body["build_config"][0]["source"]
        assert source["storage_source"] == [{"bucket": bucket["name"], "object": obj["name"]}]


def _decorators() -> dict[str, set[str]]:
    tree = ast.parse((REPO / "functions" / "main.py").read_text(encoding="utf-8"))
    return {node.name: {ast.unparse(d) for d in node.decorator_list}
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_each_trigger_calls_an_entry_point_of_the_matching_signature(combo: Combo) -> None:
    """Pub/Sub push and Cloud Scheduler post plain HTTP; Eventarc sends a CloudEvent."""
    _, planned = combo
    decorated = _decorators()
    for address, body in functions(planned).items():
        entry = body["build_config"][0]["entry_point"]
        kind = ("functions_framework.cloud_event" if body.get("event_trigger")
                else "functions_framework.http")
        assert kind in decorated.get(entry, set()), (address, entry)
    for job in planned.of_type("google_cloud_scheduler_job").values():
        (target,) = job["http_target"]
        reconcile = service_config(function(planned, "reconcile"))
        assert target["uri"] == reconcile["uri"]
        assert target["oidc_token"] == [{"audience": reconcile["uri"],
                                         "service_account_email": account(planned, "invoker")[
                                             "email"]}]
        # One reconcile at a time: two overlapping backfills would only race each other.
        assert reconcile["max_instance_count"] == 1


def test_no_variable_takes_a_secret_value(tf: Config) -> None:
    for name, variable in tf.variables.items():
        assert not re.search(r"(^|_)(token|password|secret|key|json)$", name), name
        assert variable.get("sensitive") is not True, f"{name} looks like a secret value"


def test_every_input_and_output_is_documented(tf: Config) -> None:
    readme = (MODULE / "README.md").read_text(encoding="utf-8")
    example = (MODULE / "examples" / "terraform.tfvars.example").read_text(encoding="utf-8")
    for name, variable in tf.variables.items():
        assert str(variable.get("description", "")).strip(), f"{name} has no description"
        assert str(variable.get("type", "")).strip(), f"{name} has no type"
        assert f"| `{name}` |" in readme, f"README lacks input {name}"
        assert re.search(rf"^{name}\s+=", example, re.M), f"the complete example lacks {name}"
    for name, output in tf.outputs.items():
        assert str(output.get("description", "")).strip(), name
        assert f"| `{name}` |" in readme, f"README lacks output {name}"


def test_checkov_skips_carry_a_reason() -> None:
    for path in MODULE.glob("*.tf"):
        for skip in re.findall(r"#checkov:skip=([^\n]*)", path.read_text(encoding="utf-8")):
            check, _, reason = skip.partition(":")
            assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", check), skip
            assert len(reason.split()) >= 5, f"{path.name}: {check} needs a reason"


def test_the_provider_range_has_no_cloudiot_resources(tf: Config) -> None:
    settings = tf.terraform[0]
    google = block(settings, "required_providers")["google"]
    assert google["source"] == "hashicorp/google"
    # 5.0 removed the cloudiot resources; nothing here may need them.
    assert re.match(r">= 5\.", google["version"])
    assert not [a for a in tf.resources if a.startswith("google_cloudiot_")]
