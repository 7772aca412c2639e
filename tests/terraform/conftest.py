"""Shared helpers of the Terraform tests: the module parsed with python-hcl2 (quotes, comments
and block markers removed) for the few structural checks, and the module applied offline
(tests/terraform/offline.py) for the variable combinations that change what it deploys."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.terraform.offline import OfflineModule, Planned

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "terraform"
_MARKERS = ("__comments__", "__is_block__", "__inline_comments__")


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and labels; the tests compare values."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k not in _MARKERS}
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return value


@dataclass
class Config:
    """Every top-level block of the module's *.tf files, keyed the way Terraform names them."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "type.name" -> body
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    text: dict[str, str] = field(default_factory=dict)  # file name -> source

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if k.split(".")[0] == rtype}

    def resource(self, address: str) -> dict[str, Any]:
        assert address in self.resources, f"{address} is missing from terraform/"
        return self.resources[address]


def block(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block"
    assert isinstance(blocks[0], dict)
    return blocks[0]


def blocks(body: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    found = body.get(name, [])
    assert isinstance(found, list)
    return found


def load_config(directory: Path = MODULE) -> Config:
    config = Config()
    for path in sorted(directory.glob("*.tf")):
        config.text[path.name] = path.read_text(encoding="utf-8")
        with path.open(encoding="utf-8") as handle:
            parsed = unquote(hcl2.load(handle))
        for item in parsed.get("resource", []):
            for rtype, named in item.items():
                for name, body in named.items():
                    config.resources[f"{rtype}.{name}"] = body
        for item in parsed.get("data", []):
            for rtype, named in item.items():
                for name, body in named.items():
                    config.data[f"{rtype}.{name}"] = body
        for item in parsed.get("variable", []):
            config.variables.update(item)
        for item in parsed.get("output", []):
            config.outputs.update(item)
        for item in parsed.get("locals", []):
            config.locals.update(item)
        config.terraform.extend(parsed.get("terraform", []))
    return config


@pytest.fixture(scope="session")
def tf() -> Config:
    return load_config()


# The variable combinations that change what the module deploys. Registries and projects are
# the captured audit entry's (tests/fixtures), so the sink filter can be tried on it.
BASE: dict[str, Any] = {"project_id": "acme-fleet-prod", "iot_project": "cloud-custodian",
                        "iot_location": "europe-west1",
                        "iot_reader_role": "projects/cloud-custodian/roles/iotDeviceReader"}
TARGETS = [
    {"name": "staging", "mender_url": "https://staging.mender.example.com",
     "registries": ["custodian"]},
    {"name": "prod-eu", "mender_url": "https://eu.hosted.mender.io",
     "registries": ["field-a", "field-b"]},
]
WEBHOOK = {"enable_provision_webhook": True,
           "provision_invokers": ["serviceAccount:factory@acme-factory.iam.gserviceaccount.com"]}
COMBOS: dict[str, dict[str, Any]] = {
    "google+push": {**BASE, "iot_registries": ["custodian", "field-a"]},
    "google+push+webhook+all-registries": {**BASE, **WEBHOOK},
    "google+pull": {**BASE, "event_delivery": "pull", "iot_registries": ["custodian"]},
    "google+eventarc": {**BASE, "event_delivery": "eventarc", "iot_registries": ["custodian"]},
    "google+pull+targets+webhook": {**BASE, **WEBHOOK, "event_delivery": "pull",
                                    "mender_targets": TARGETS},
    "clearblade": {**BASE, "registry_backend": "clearblade", "iot_registries": ["custodian"]},
    "clearblade+targets+webhook": {**BASE, **WEBHOOK, "registry_backend": "clearblade",
                                   "mender_targets": TARGETS, "tags": "site={metadata[site]}"},
}
GOOGLE = [name for name in COMBOS if name.startswith("google")]
CLEARBLADE = [name for name in COMBOS if name.startswith("clearblade")]


@pytest.fixture(scope="session")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineModule]:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI script warns about it)")
    yield OfflineModule(tmp_path_factory.mktemp("tf-offline"), binary, MODULE)


@pytest.fixture(params=list(COMBOS))
def combo(request: pytest.FixtureRequest, offline: OfflineModule) -> tuple[str, Planned]:
    """(name, what the module deploys) for each combination in COMBOS."""
    name: str = request.param
    return name, offline.plan(COMBOS[name])
