"""The stand-ins are independent of the bridge they test: nothing of the Mender and registry
stand-ins (bridge/sandbox/ but the launcher) imports the bridge's core, clients or service, so
a bug there cannot hide the same bug in the sandbox. The launcher is not a stand-in: it wires
them together and to Pub/Sub (`bridge.pubsub`) and hands tests the token as `bridge.model.Secret`.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from tests.support import procs

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "bridge" / "sandbox"
# (file, module): imports of the bridge allowed under bridge/sandbox/, none at module level.
ALLOWED = {("launcher.py", "bridge.model")}
# The sandbox's composition root, allowed the bridge's Pub/Sub wiring at module level.
LAUNCHER_WIRING = ("bridge.pubsub.local", "bridge.pubsub.topology")


def _bridge_imports(text: str, package: str) -> list[tuple[str, bool]]:
    """(module, whether imported at module level) for each import of a `bridge` module in the
    source `text` of a module of `package` (which resolves its relative imports)."""
    tree = ast.parse(text)
    module_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1]) if node.level else ""
            names = [".".join(p for p in (base, node.module or "") if p)]
        found += [(name, id(node) in module_level) for name in names
                  if name == "bridge" or name.startswith("bridge.")]
    return found


def test_the_scanner_sees_relative_lazy_and_module_level_imports() -> None:
    text = ("from . import store\nimport bridge.keys\n"
            "def f() -> None:\n    from ..launcher import Sandbox\n")
    assert _bridge_imports(text, "bridge.sandbox.mender") == [
        ("bridge.sandbox.mender", True), ("bridge.keys", True),
        ("bridge.sandbox.launcher", False)]


def test_sandbox_modules_import_only_the_sandbox() -> None:
    offenders = []
    files = sorted(SANDBOX.rglob("*.py"))
    assert len(files) > 10  # the mender and registry packages are both scanned
    for path in files:
        relative = path.relative_to(SANDBOX).as_posix()
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        for module, at_module_level in _bridge_imports(path.read_text(encoding="utf-8"),
                                                       package):
            if module == "bridge.sandbox" or module.startswith("bridge.sandbox."):
                continue
            if (relative, module) in ALLOWED and not at_module_level:
                continue
            if relative == "launcher.py" and module in LAUNCHER_WIRING:
                continue
            offenders.append(f"{relative}: {module}")
    assert offenders == []


def test_importing_the_stand_ins_loads_nothing_of_the_bridge() -> None:
    code = ("import sys\n"
            "import bridge.sandbox.mender, bridge.sandbox.registry\n"
            "print(sorted(m for m in sys.modules if m.startswith('bridge.')\n"
            "             and not m.startswith('bridge.sandbox')))\n")
    result = procs.run([sys.executable, "-c", code], env=dict(os.environ), timeout=120,
                       cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
