"""The one-way dependency rule of docs/architecture.md, read from the source: no module of a
lower layer imports a higher one, and the stand-ins import nothing of the bridge outside
`bridge.sandbox`. A forbidden import added anywhere fails this test (the checker itself is
tested on a module written here)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own layer and those below, nothing above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("bridge", "bridge.model", "bridge.errors", "bridge.logs")),
    ("core", ("bridge.names", "bridge.identity", "bridge.actions", "bridge.tags",
              "bridge.pem", "bridge.keyparse", "bridge.keys", "bridge.reconcile",
              "bridge.report", "bridge.scope",
              "bridge.ports", "bridge.urls", "bridge.devicekeys", "bridge.keykit",
              "bridge.device")),
    ("adapters", ("bridge.mender", "bridge.registry", "bridge.events", "bridge.httpclient")),
    ("service", ("bridge.apply", "bridge.backfill", "bridge.sync", "bridge.service",
                 "bridge.notify", "bridge.keycheck")),
    ("config", ("bridge.config", "bridge.configvalues", "bridge.settingscheck")),
    ("composition", ("bridge.factory", "bridge.runtime")),
    ("entry", ("bridge.cli", "bridge.webhook", "bridge.server", "bridge.httpbody",
               "bridge.pubsub", "bridge.demo", "bridge.__main__", "functions",
               "bridge.sandbox.launcher")),
]
# The stand-ins are the oracle the bridge is tested against: they share no code with it.
# (The launcher only wires them to each other and to Pub/Sub; it is an entry point.)
STAND_INS = ("bridge.sandbox",)
# Adapters and the service are side by side: neither may import the other.
SIBLINGS = {("adapters", "service"), ("service", "adapters")}


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), name)
    return None if best is None else best[1]


def rank(layer: str) -> int:
    return [name for name, _ in LAYERS].index(layer)


def imports(source: str, module: str) -> list[str]:
    """Modules of `bridge` imported by `source`, including lazy imports inside functions."""
    found: list[str] = []
    package = module if module.endswith("__init__") else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            found.extend(f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base
                         for a in node.names)
    return [m for m in found if m == "bridge" or m.startswith(("bridge.", "functions."))]


def _is_module(name: str) -> bool:
    path = ROOT / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(module: str, source: str) -> list[str]:
    own = layer_of(module)
    if module.startswith(STAND_INS) and own == "base":
        return [f"{module} imports {m}: the stand-ins must not use the bridge"
                for m in imports(source, module)
                if not m.startswith("bridge.sandbox") and m != "bridge"]
    if own is None:
        return [f"{module} is in no layer of tests/test_layers.py"]
    out = []
    for target in imports(source, module):
        theirs = layer_of(target)
        if target.startswith("bridge.sandbox") and own != "entry" and own != "composition":
            out.append(f"{module} ({own}) imports the sandbox {target}")
        if theirs is None or target.startswith("bridge.sandbox"):
            continue
        if rank(theirs) > rank(own) or (own, theirs) in SIBLINGS:
            out.append(f"{module} ({own}) imports {target} ({theirs})")
    return out


def modules() -> list[tuple[str, Path]]:
    out = []
    for top in ("bridge", "functions"):
        for path in sorted((ROOT / top).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out.append((name.removesuffix(".__init__"), path))
    return out


def test_no_module_imports_a_higher_layer() -> None:
    found = [v for name, path in modules()
             for v in violations(name, path.read_text(encoding="utf-8"))]
    assert found == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("bridge.reconcile", "from bridge.config import Settings\n",
     ["bridge.reconcile (core) imports bridge.config (config)"]),
    ("bridge.sync", "def f():\n    from bridge.mender import client\n",
     ["bridge.sync (service) imports bridge.mender.client (adapters)"]),
    ("bridge.mender.client", "import bridge.runtime\n",
     ["bridge.mender.client (adapters) imports bridge.runtime (composition)"]),
    ("bridge.sandbox.mender.app", "from bridge.keys import normalize\n",
     ["bridge.sandbox.mender.app imports bridge.keys: the stand-ins must not use the bridge"]),
    ("bridge.scope", "from bridge import names\nfrom bridge.model import RegistryRef\n", []),
    ("bridge.cli.sync", "from bridge.factory import build_service\n", []),
])
def test_the_checker_catches_a_forbidden_import(module: str, source: str,
                                                expected: list[str]) -> None:
    assert violations(module, source) == expected
