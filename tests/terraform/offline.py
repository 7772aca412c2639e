"""The module applied offline, for tests: every resource and data source of terraform/ is
rendered as a built-in `terraform_data` whose input holds its arguments (nested and dynamic
blocks as lists of objects) plus the computed attributes the module reads, emulated and, like
the real ones, unknown until apply. The real `terraform` binary then evaluates the module's
own counts, for_each, expressions, validations, preconditions and outputs, no provider needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

META = frozenset({"count", "for_each", "depends_on", "lifecycle", "provider", "dynamic"})
MARKERS = frozenset({"__is_block__", "__comments__", "__inline_comments__"})

# Computed attributes the module reads, emulated from the resource's own arguments
# (`<arg>`): a reference to anything else not declared fails the apply, as a typo would.
COMPUTED: dict[str, dict[str, str]] = {
    "google_service_account": {
        "email": "<account_id>@<project>.iam.gserviceaccount.com",
        "name": "projects/<project>/serviceAccounts/<account_id>@<project>.iam.gserviceaccount.com",
        "id": "projects/<project>/serviceAccounts/<account_id>@<project>.iam.gserviceaccount.com",
    },
    "google_pubsub_topic": {"id": "projects/<project>/topics/<name>"},
    "google_pubsub_subscription": {"id": "projects/<project>/subscriptions/<name>"},
    "google_secret_manager_secret": {"id": "projects/<project>/secrets/<secret_id>"},
    "google_logging_project_sink": {
        "writer_identity": "serviceAccount:<name>@gcp-sa-logging.iam.gserviceaccount.com"},
    "google_artifact_registry_repository": {
        "id": "projects/<project>/locations/<location>/repositories/<repository_id>",
        "name": "<repository_id>"},
    "google_cloud_scheduler_job": {"id": "projects/<project>/locations/<region>/jobs/<name>"},
    "data.google_project": {"number": "123456789012"},
}
NESTED: dict[tuple[str, str], dict[str, str]] = {
    ("google_cloudfunctions2_function", "service_config"): {
        "uri": "https://<name>-<location>.a.run.app",
        "service": "projects/<project>/locations/<location>/services/<name>"},
}
REF = re.compile(r"(?<![\w.])(?P<data>data\.)?(?P<type>google_\w+)\.(?P<name>\w+)"
                 r"(?P<index>\[[^\]]*\])?(?:\.(?P<attr>\w+)(?P<rest>\[\d+\]\.\w+)?)?")


def _is_blocks(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, dict) and v.get("__is_block__") for v in value)


def _bare(label: str) -> str:
    return label[1:-1] if label.startswith('"') and label.endswith('"') else label


def _stub(kind: str, rtype: str, name: str) -> str:
    return ("data__" if kind == "data" else "") + f"{rtype}__{name}"


class Renderer:
    """HCL text of the module with resources and data sources as terraform_data."""

    def __init__(self, parsed: Sequence[Mapping[str, Any]]) -> None:
        self.parsed = parsed
        self.known: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for doc in parsed:
            for kind in ("resource", "data"):
                for item in doc.get(kind, []):
                    for rtype, named in item.items():
                        for name, body in named.items():
                            self.known[(kind, _bare(rtype), _bare(name))] = body

    def _ref(self, match: re.Match[str]) -> str:
        kind = "data" if match["data"] else "resource"
        key = (kind, match["type"], match["name"])
        if key not in self.known:
            return match[0]
        target = f"terraform_data.{_stub(*key)}{match['index'] or ''}"
        if not match["attr"]:
            return target
        computed_key = f"data.{key[1]}" if kind == "data" else key[1]
        rest = match["rest"] or ""
        nested = NESTED.get((key[1], match["attr"]), {})
        computed = match["attr"] in COMPUTED.get(computed_key, {}) or (
            rest and rest.rsplit(".", 1)[1] in nested)
        return f"{target}.{'output' if computed else 'input'}.{match['attr']}{rest}"

    def expression(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return "null"
        if isinstance(value, int | float):
            return json.dumps(value)
        if isinstance(value, str):
            inner = value[2:-1] if value.startswith("${") and value.endswith("}") else value
            return REF.sub(self._ref, inner)
        if isinstance(value, list):
            return "[" + ", ".join(self.expression(v) for v in value) + "]"
        assert isinstance(value, dict), value
        return "{" + ", ".join(f"{k} = {self.expression(v)}" for k, v in value.items()
                               if k not in MARKERS) + "}"

    def _emulated(self, templates: Mapping[str, str], top: Mapping[str, Any]) -> dict[str, str]:
        def argument(match: re.Match[str]) -> str:
            return "${" + self.expression(top[match[1]]) + "}"
        return {k: '"' + re.sub(r"<(\w+)>", argument, t) + '"' for k, t in templates.items()}

    def obj(self, ctype: str, body: Mapping[str, Any], top: Mapping[str, Any],
            block: str | None = None) -> str:
        """A resource body as one object: arguments, blocks as lists, emulated attributes."""
        parts: dict[str, list[str]] = {}
        for key, value in body.items():
            if key in MARKERS or key in META:
                continue
            if _is_blocks(value):
                items = ", ".join(self.obj(ctype, b, top, key) for b in value)
                parts.setdefault(key, []).append(f"[{items}]")
            else:
                parts[key] = [self.expression(value)]
        for item in body.get("dynamic", []):
            for label, spec in item.items():
                name = _bare(label)
                it = self.expression(spec["iterator"]) if "iterator" in spec else name
                content = self.obj(ctype, spec["content"][0], top, name)
                each = self.expression(spec["for_each"])
                pairs = f"[for k, v in {each} : {{key = k, value = v}}]"
                parts.setdefault(name, []).append(f"[for {it} in {pairs} : {content}]")
        templates = COMPUTED.get(ctype, {}) if block is None else NESTED.get((ctype, block), {})
        for key, text in self._emulated(templates, top).items():
            parts[key] = [text]
        return "{" + ", ".join(
            f"{k} = {v[0] if len(v) == 1 else 'concat(' + ', '.join(v) + ')'}"
            for k, v in parts.items()) + "}"

    def block(self, header: str, body: Mapping[str, Any], indent: str = "") -> list[str]:
        lines = [f"{indent}{header} {{"]
        for key, value in body.items():
            if key in MARKERS:
                continue
            if _is_blocks(value):
                for nested in value:
                    lines += self.block(key, nested, indent + "  ")
            else:
                lines.append(f"{indent}  {key} = {self.expression(value)}")
        return [*lines, f"{indent}}}"]

    def render(self) -> str:
        lines: list[str] = []
        for (kind, rtype, name), body in self.known.items():
            ctype = f"data.{rtype}" if kind == "data" else rtype
            lines.append(f'resource "terraform_data" "{_stub(kind, rtype, name)}" {{')
            for meta in ("count", "for_each"):
                if meta in body:
                    lines.append(f"  {meta} = {self.expression(body[meta])}")
            lines.append(f"  input = {self.obj(ctype, body, body)}")
            for lifecycle in body.get("lifecycle", []):
                checks = {k: v for k, v in lifecycle.items()
                          if k in ("precondition", "postcondition")}
                lines += self.block("lifecycle", checks, "  ")
            lines.append("}")
        for doc in self.parsed:
            for item in doc.get("variable", []):
                for name, body in item.items():
                    lines += self.block(f'variable "{_bare(name)}"', body)
            for item in doc.get("output", []):
                for name, body in item.items():
                    lines += self.block(f'output "{_bare(name)}"', body)
            for item in doc.get("moved", []):
                # Addresses of earlier releases too, which are no longer declared.
                moved = {k: re.sub(r"\b(google_\w+)\.(\w+)", r"terraform_data.\1__\2", v[2:-1])
                         for k, v in item.items() if k in ("from", "to")}
                lines += [f"moved {{\n  from = {moved['from']}\n  to = {moved['to']}\n}}"]
            for item in doc.get("locals", []):
                lines += self.block("locals", item)
                lines += [f'output "local__{k}" {{\n  value = local.{k}\n}}'
                          for k in item if k not in MARKERS]
        return "\n".join(lines) + "\n"


def render(module: Path) -> str:
    parsed = []
    for path in sorted(module.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed.append(hcl2.load(handle))
    return Renderer(parsed).render()


@dataclass(frozen=True)
class Planned:
    """What the module creates for one set of variables: Terraform address -> arguments (with
    the emulated computed attributes), the outputs and the locals."""

    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    locals: dict[str, Any]

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {a: v for a, v in self.resources.items() if a.split(".")[0] == rtype}

    def named(self, rtype: str, name: str) -> dict[str, dict[str, Any]]:
        """The instances of one resource block (none when its count is 0)."""
        return {a: v for a, v in self.resources.items()
                if re.fullmatch(rf"{re.escape(rtype)}\.{re.escape(name)}(\[.*\])?", a)}

    def one(self, rtype: str, name: str) -> dict[str, Any]:
        found = self.named(rtype, name)
        assert len(found) == 1, f"expected one {rtype}.{name}, found {sorted(found)}"
        return next(iter(found.values()))


def _address(stub: str, index: Any) -> str:
    """Terraform's address of a rendered instance: `type.name`, `[0]`, `["key"]`."""
    data = stub.startswith("data__")
    rtype, name = stub.removeprefix("data__").split("__")
    base = f"{'data.' if data else ''}{rtype}.{name}"
    return base if index is None else f"{base}[{json.dumps(index)}]"


def run_grouped(argv: Sequence[str], cwd: Path,
                env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in its own process group, killed on the way out whatever happens."""
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def terraform(binary: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # CHECKPOINT_DISABLE: no version check over the network.
    return run_grouped([binary, *args], cwd, {
        **os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull})


class OfflineModule:
    """The rendered module in a scratch directory, applied with a fresh state each time."""

    def __init__(self, workdir: Path, binary: str, module: Path) -> None:
        self.workdir = workdir
        self.binary = binary
        (workdir / "main.tf").write_text(render(module), encoding="utf-8")
        # filesha256() needs a file; any bytes stand for the packaged archive.
        self.archive = workdir / "archive.zip"
        self.archive.write_bytes(b"stand-in for the function archive")
        self._cache: dict[str, Planned] = {}
        init = self._run("init", "-input=false", "-no-color")
        assert init.returncode == 0, init.stdout + init.stderr

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return terraform(self.binary, self.workdir, *args)

    def apply(self, tfvars: Mapping[str, Any],
              var_files: Sequence[Path] = ()) -> subprocess.CompletedProcess[str]:
        (self.workdir / "terraform.tfvars.json").write_text(json.dumps(tfvars), encoding="utf-8")
        (self.workdir / "terraform.tfstate").unlink(missing_ok=True)
        files = [f"-var-file={f}" for f in var_files]
        return self._run("apply", "-auto-approve", "-input=false", "-no-color",
                         "-parallelism=30", *files, f"-var=source_archive={self.archive}")

    def plan(self, tfvars: Mapping[str, Any], var_files: Sequence[Path] = ()) -> Planned:
        key = json.dumps([tfvars, [str(f) for f in var_files]], sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self._read(self.apply(tfvars, var_files))
        return self._cache[key]

    def _read(self, result: subprocess.CompletedProcess[str]) -> Planned:
        assert result.returncode == 0, result.stdout + result.stderr
        shown = self._run("show", "-json", "-no-color")
        values = json.loads(shown.stdout).get("values", {})
        resources = {
            _address(r["name"], r.get("index")): r["values"]["input"]
            for r in values.get("root_module", {}).get("resources", [])}
        outputs = {k: v["value"] for k, v in values.get("outputs", {}).items()}
        return Planned(
            resources=resources,
            outputs={k: v for k, v in outputs.items() if not k.startswith("local__")},
            locals={k.removeprefix("local__"): v for k, v in outputs.items()
                    if k.startswith("local__")})

