"""Shared helpers of the Terraform tests: the module parsed with python-hcl2 (quotes, comments
and block markers removed), and a provider-less copy of its inputs that the real `terraform`
binary can evaluate offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

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


class Evaluator:
    """variables.tf + locals.tf in a scratch directory, with outputs added: no provider is
    needed, so `terraform init/apply` run offline and evaluate the module's own expressions
    and input validations with the real binary."""

    def __init__(self, workdir: Path, binary: str) -> None:
        self.workdir = workdir
        self.binary = binary
        for name in ("variables.tf", "locals.tf"):
            shutil.copy(MODULE / name, workdir / name)
        outputs = ["sink_filter", "environment", "services", "push_delivery", "source_archive"]
        (workdir / "probe.tf").write_text(
            "\n".join(f'output "{o}" {{\n  value = local.{o}\n}}' for o in outputs) + "\n",
            encoding="utf-8",
        )
        self._run("init", "-input=false", "-no-color")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        # CHECKPOINT_DISABLE: no version check over the network.
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
        return subprocess.run(
            [self.binary, *args], cwd=self.workdir, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )

    def apply(self, tfvars: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        (self.workdir / "terraform.tfvars.json").write_text(json.dumps(tfvars), encoding="utf-8")
        state = self.workdir / "terraform.tfstate"
        state.unlink(missing_ok=True)
        return self._run("apply", "-auto-approve", "-input=false", "-no-color")

    def outputs(self, tfvars: Mapping[str, Any]) -> dict[str, Any]:
        result = self.apply(tfvars)
        assert result.returncode == 0, result.stdout + result.stderr
        shown = self._run("output", "-json", "-no-color")
        return {k: v["value"] for k, v in json.loads(shown.stdout).items()}


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evaluator]:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (the CI script warns about it)")
    yield Evaluator(tmp_path_factory.mktemp("tf-eval"), binary)
