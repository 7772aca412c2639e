"""The README must match the code: every setting, every command line and option it quotes,
every error message it quotes (printed by the real CLI from the input that causes it), its
settings files, and the commands CI runs."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from bridge.cli import COMMANDS
from bridge.config import Settings
from bridge.sandbox.launcher import PROJECT, Sandbox
from tests.docs_cli import (
    Run,
    command_lines,
    fenced,
    offline_runs,
    problems_of,
    quoted_errors,
    sandbox_runs,
)

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


# --- The README's command lines, error messages and settings files are real ---------------

def test_every_command_line_the_readme_quotes_parses() -> None:
    """Each `mender-bridge …` line names a command (and subcommand) of the CLI, and every
    `--flag` on it is an option `--help` lists for that command."""
    checked = [(line, *problems_of(line)) for line in command_lines(README)]
    assert {path[0] for _, path, _ in checked} >= set(COMMANDS), "a command is never quoted"
    wrong = [f"mender-bridge {line}: {'; '.join(problems)}"
             for line, _, problems in checked if problems]
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Run]]:
    runs = list(offline_runs(tmp_path_factory.mktemp("offline")))
    with Sandbox(tmp_path_factory.mktemp("sandbox"), tls=True) as box:
        assert box.ca_cert is not None
        runs += sandbox_runs(box.mender_url, box.registry_url, box.ca_cert,
                             box.token.reveal(), PROJECT)
    yield runs


def test_every_error_message_the_readme_quotes_is_what_the_cli_prints(
        cli_runs: list[Run]) -> None:
    """A quoted message is a code span followed by `(exit N)`: some run of the CLI prints it
    on a line of its own output and exits N, and every run prints one of them."""
    quoted = quoted_errors(README)
    unmarked = set(re.findall(r"`(mender-bridge: error: [^`]+)`", README)) - {q for q, _ in
                                                                          quoted}
    assert not unmarked, f"quoted without its exit code: {sorted(unmarked)}"
    wrong = []
    for message, code in quoted:
        printing = [run for run in cli_runs if any(message in line for line in run.lines)]
        if not printing:
            wrong.append(f"no run prints {message!r}")
        elif all(run.result.returncode != code for run in printing):
            wrong.append(f"{message!r} comes with exit "
                         f"{[run.result.returncode for run in printing]}, not {code}")
    unquoted = [run for run in cli_runs
                if not any(message in line for message, _ in quoted for line in run.lines)]
    wrong += [f"the README quotes nothing {run.what!r} printed: {run.lines}" for run in unquoted]
    assert not wrong, "\n".join(wrong)


def test_the_readmes_settings_files_load(tmp_path: Path) -> None:
    """Each TOML example is a settings file the bridge accepts, tokens given as the README
    says (MENDER_TOKEN, or MENDER_TOKEN_<NAME> per target)."""
    blocks = [block for lang, block in fenced(README) if lang == "toml"]
    assert blocks, "no settings file in the README"
    for number, block in enumerate(blocks):
        data = tomllib.loads(block)
        names = [target["name"] for target in data.get("targets", [])]
        env = {f"MENDER_TOKEN_{n.upper().replace('-', '_')}": "t" for n in names} or {
            "MENDER_TOKEN": "t"}
        if "iot_project" not in data:
            env["IOT_PROJECT"] = "example-project"
        path = tmp_path / f"example-{number}.toml"
        path.write_text(block, encoding="utf-8")
        settings = Settings.from_toml(path, env)
        assert [t.name for t in settings.mender_targets] == names


# --- Links to docs/: every `docs/<file>.md#anchor` in code and docs names a real section ------

SCANNED = ("bridge", "functions", "tests", "bench", "keys", "terraform", "docs", ".ci")
DOC_REF = re.compile(r"(?<![\w/.-])docs/([\w.-]+\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\]\(([\w.-]+\.md)?(?:#([\w-]+))?\)")
# The research notes docs/ was written from live outside the repository: code must not cite
# their numbered sections or files (the section sign is escaped so this line is no citation).
OUTSIDE_FACTS = re.compile(r"\bfacts \u00a7|-facts\.md")


def _anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces → hyphens."""
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", doc.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def _texts() -> list[tuple[Path, str]]:
    paths = [p for p in ROOT.glob("*.md")]
    for top in SCANNED:
        paths += [p for p in (ROOT / top).rglob("*") if p.is_file()
                  and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    texts = []
    for path in sorted(paths):
        try:
            texts.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    return texts


def _references() -> list[tuple[Path, str, str | None]]:
    """(file citing, doc path relative to the repository, anchor or None)."""
    refs: list[tuple[Path, str, str | None]] = []
    for path, text in _texts():
        refs += [(path, f"docs/{m.group(1)}", m.group(2)) for m in DOC_REF.finditer(text)]
        if path.suffix == ".md":
            for m in MD_LINK.finditer(text):
                target = path if m.group(1) is None else path.parent / m.group(1)
                refs.append((path, str(target.resolve().relative_to(ROOT)), m.group(2)))
    return refs


def test_every_link_to_the_docs_names_an_existing_file_and_section() -> None:
    refs = _references()
    assert any(ref[1] == "docs/mender-api.md" and ref[2] for ref in refs), "no citation found"
    broken = []
    for path, doc, anchor in refs:
        target = ROOT / doc
        if not target.is_file():
            broken.append(f"{path.relative_to(ROOT)}: {doc} does not exist")
        elif anchor is not None and anchor not in _anchors(target):
            broken.append(f"{path.relative_to(ROOT)}: {doc} has no section #{anchor}")
    assert not broken, "\n".join(broken)


def test_code_cites_the_docs_in_the_repository_not_outside_facts() -> None:
    cited = [f"{path.relative_to(ROOT)}: {line.strip()}" for path, text in _texts()
             if path.suffix == ".py" for line in text.splitlines()
             if OUTSIDE_FACTS.search(line)]
    assert not cited, "\n".join(cited)


# --- The README's promise: the tests pass on a clone with nothing beside it ------------------

OUTSIDE_PATH = re.compile(
    r"parents\[\d+\]\.parent\b|\b(?:ROOT|REPO|HERE)\.parent\b|(?:\.parent|\])\s*/\s*\"shared\"")


def test_no_test_builds_a_path_out_of_the_repository() -> None:
    """Files beside the repository are reached only through tests.fixtures.shared_file (skip
    where absent, fail with REQUIRE_SHARED=1); CI's bare-clone run relies on this."""
    gateway = ROOT / "tests" / "fixtures" / "__init__.py"
    found = [f"{path.relative_to(ROOT)}: {line.strip()}" for path, text in _texts()
             if path.suffix == ".py" and path != gateway
             and path.relative_to(ROOT).parts[0] in ("tests", "bench")
             for line in text.splitlines() if OUTSIDE_PATH.search(line)]
    assert not found, "\n".join(found)
