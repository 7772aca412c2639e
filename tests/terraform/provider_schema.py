"""Check terraform/ against the hashicorp/google schema as the cdktf bindings publish it
(npm `@cdktf/provider-google`, one `lib/<resource>/index.d.ts` per resource): every argument
and block used exists, every required argument is set. It stands in for `terraform validate`,
whose provider binary cannot be downloaded here; `.ci/terraform-checks.sh` fetches the bindings.

Usage: python tests/terraform/provider_schema.py TERRAFORM_DIR LIB_DIR [LIB_DIR ...]
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.terraform.conftest import load_config

META = frozenset({"count", "for_each", "depends_on", "lifecycle", "provider", "dynamic"})
_ANCHOR = re.compile(r"#([a-z0-9_]+) [A-Za-z0-9]+#")
_DOCS = re.compile(r"hashicorp/google/([0-9.]+)/docs")
# The doc anchor (`#snake_name Resource#snake_name`), then the field: `readonly camel?: Type;`.
_FIELD = re.compile(
    r"#([a-z0-9_]+) [A-Za-z0-9]+#[^\n]*\n(?:[^\n]*\n)*?\s*readonly \w+(\??): ([^;]+);")


def declaration(lib: Path, rtype: str, kind: str = "resource") -> str | None:
    name = rtype.removeprefix("google_").replace("_", "-")
    path = lib / (f"data-google-{name}" if kind == "data" else name) / "index.d.ts"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def provider_version(lib: Path) -> str:
    text = declaration(lib, "google_pubsub_topic") or ""
    found = _DOCS.search(text)
    return found.group(1) if found else "unknown"


def _blocks(body: Mapping[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(name, bodies) of the nested blocks, `dynamic` ones unwrapped to their content."""
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in body.items():
        if key == "dynamic":
            for item in value:
                for name, spec in item.items():
                    out.append((name, list(spec.get("content", []))))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            out.append((key, value))
    return out


def _keys(body: Mapping[str, Any]) -> set[str]:
    keys = {k for k in body if k not in META}
    keys.update(name for name, _ in _blocks(body) if name not in META)
    return keys


def unknown_arguments(where: str, body: Mapping[str, Any], known: set[str]) -> list[str]:
    problems = [f"{where}: unknown argument {k}" for k in sorted(_keys(body)) if k not in known]
    for name, bodies in _blocks(body):
        if name == "lifecycle":
            continue
        for nested in bodies:
            problems += unknown_arguments(f"{where}.{name}", nested, known)
    return problems


def missing_required(where: str, body: Mapping[str, Any], text: str, interface: str) -> list[str]:
    match = re.search(rf"export interface {interface} [^{{]*\{{(.*?)\n\}}", text, re.S)
    if match is None:
        return [f"{where}: the schema has no {interface}"]
    present = _keys(body)
    nested = dict(_blocks(body))
    problems = []
    for name, optional, type_text in _FIELD.findall(match.group(1)):
        if not optional and name not in present:
            problems.append(f"{where}: required argument {name} is not set")
        inner = re.match(r"(\w+)", type_text.strip())
        if name in nested and inner and inner.group(1)[0].isupper():
            for item in nested[name]:
                problems += missing_required(f"{where}.{name}", item, text, inner.group(1))
    return problems


def check(module: Path, lib: Path) -> list[str]:
    config = load_config(module)
    problems: list[str] = []
    for kind, items in (("resource", config.resources), ("data", config.data)):
        for address, body in items.items():
            text = declaration(lib, address.split(".")[0], kind)
            if text is None:
                problems.append(f"{address}: no such {kind} type")
                continue
            problems += unknown_arguments(address, body, set(_ANCHOR.findall(text)))
            top = re.search(r"export interface (\w+Config) extends cdktf\.TerraformMetaArguments",
                            text)
            if kind == "resource" and top:
                problems += missing_required(address, body, text, top.group(1))
    return problems


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    module, libs = Path(argv[0]), [Path(a) for a in argv[1:]]
    failed = False
    for lib in libs:
        problems = check(module, lib)
        version = provider_version(lib)
        for problem in problems:
            print(f"hashicorp/google {version}: {problem}")
        print(f"hashicorp/google {version}: {len(problems)} problem(s)")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
