"""Build the Cloud Function source archive: main.py at the root, the modules of the `bridge`
package that main.py can import (nothing of the CLI, the demo or the sandbox), and a pinned
requirements.txt. Reproducible: the same inputs give the same bytes (sorted entries, fixed
timestamps and permissions, stored uncompressed so no zlib version can change them).

Usage: `python functions/package.py --out dist` (prints the archive's path and SHA-256).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ARCHIVE_NAME = "mender-bridge-function.zip"
# The earliest time a zip header can hold; any fixed value would do.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
PACKAGE = "bridge"
_PINNED = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!*-]+(\s*;.*)?$"
)


class PackagingError(Exception):
    """The inputs cannot make a deployable archive (a missing file, an unpinned requirement)."""


def requirement_problems(text: str) -> list[str]:
    """Lines of a requirements file that are not `name==version` pins, or that name the bridge."""
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--hash") or line.endswith("\\"):
            problems.append(f"line {number}: continuation lines and hashes are not supported")
        elif not _PINNED.match(line):
            problems.append(f"line {number}: {line!r} is not pinned as name==version")
        elif re.split(r"[\[=;]", line, maxsplit=1)[0].lower().replace("_", "-") == "mender-bridge":
            # The bridge ships inside the archive; from PyPI it would be someone else's package.
            problems.append(f"line {number}: the bridge is vendored, do not install it")
    return problems


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, root: Path) -> set[str]:
    """Every module an import statement of `path` may name, lazy imports in functions included
    (`from a.b import c` may name the module a.b.c)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def reachable(root: Path, start: Path) -> set[Path]:
    """The files of the `bridge` package that `start` imports, directly or not, with the
    `__init__.py` of every package on the way."""
    found: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        for name in _imported_names(path, root):
            parts = name.split(".")
            if parts[0] != PACKAGE:
                continue
            for end in range(1, len(parts) + 1):
                module = _module_file(root, ".".join(parts[:end]))
                if module is not None and module not in found:
                    found.add(module)
                    todo.append(module)
    return found


def collect(root: Path) -> list[tuple[str, Path]]:
    """(name in the archive, source file) for every file of the archive, sorted by name."""
    main = root / "functions" / "main.py"
    requirements = root / "functions" / "requirements.txt"
    for needed in (main, requirements, root / PACKAGE / "__init__.py"):
        if not needed.is_file():
            raise PackagingError(f"missing {needed.relative_to(root)}")
    problems = requirement_problems(requirements.read_text(encoding="utf-8"))
    if problems:
        raise PackagingError("functions/requirements.txt: " + "; ".join(problems))
    entries = [("main.py", main), ("requirements.txt", requirements)]
    entries += [(path.relative_to(root).as_posix(), path) for path in reachable(root, main)]
    return sorted(entries)


def write_archive(entries: Sequence[tuple[str, Path]], target: Path) -> None:
    """Write the zip atomically: a half-written archive must never be uploaded."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".package-", suffix=".zip", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, source in entries:
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.create_system = 3  # unix, so external_attr holds a mode
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, source.read_bytes())
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def build(root: Path, out_dir: Path) -> Path:
    """Build the archive of the tree at `root` into `out_dir`; return its path."""
    target = out_dir / ARCHIVE_NAME
    write_archive(collect(root), target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("dist"), help="output directory")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="repository root holding functions/ and bridge/ (default: this file's repository)",
    )
    args = parser.parse_args(argv)
    try:
        target = build(args.root.resolve(), args.out)
    except (PackagingError, OSError) as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 2
    print(f"{target}  sha256={sha256(target)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
