"""The README must match the code: every setting, every command, and the commands CI runs."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from bridge.cli import COMMANDS
from bridge.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_default() -> None:
    table = {m.group(1): m.group(2) for m in
             re.finditer(r"^\| `([A-Z_]+)`(?:, `[A-Z_]+`)? \| ([^|]*) \|", README, re.M)}
    documented = set(table) | set(re.findall(r"`([A-Z_]+)` \|", README))
    missing = [f.name.upper() for f in fields(Settings) if f.name.upper() not in documented]
    assert not missing, f"settings missing from the README table: {missing}"
    for f in fields(Settings):
        name = f.name.upper()
        if name in table and isinstance(f.default, (str, int, float)) and f.default != "":
            shown = table[name].strip().strip("`").lower()
            if isinstance(f.default, float):
                assert float(shown) == f.default, (name, shown)
            else:
                assert str(f.default).lower() in shown, (name, shown)


def test_every_command_is_in_the_cli_reference() -> None:
    for name in COMMANDS:
        assert re.search(rf"^\| `{name}[ `]", README, re.M), f"`{name}` missing from README"


def test_the_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    first = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    assert len(first) == 2, "the README starts with two commands: the demo and the tests"
    demo, tests = first
    assert demo.endswith("pip install -e . && mender-bridge demo")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for step in tests.split(" && "):
        if step.startswith(". ") or step.startswith("python3 -m venv"):
            continue
        assert step in ci, f"CI does not run {step!r} as the README says"
