"""The workflow version: the package version and a hash of every file that decides what a run
does, so that ``axtrace verify`` proves what it says ("every site runs the same workflow").

Covered: every ``.py`` file of ``axtrace/``, ``axtrace_blocks/`` and ``flows/``, except the
ledger's migrations (the schema they build is ``ledger/models.py``, covered) and
``axtrace/testing.py`` (the test harness). Not covered: tests, docs, benchmarks, the README.
The hash is over sorted relative paths and contents with line endings normalised, so two
checkouts of the same code agree on any machine.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from axtrace import __version__

PACKAGES = ("axtrace", "axtrace_blocks", "flows")
NOT_BEHAVIOUR = ("axtrace/ledger/migrations/", "axtrace/testing.py")


def _folder(root: Path, package: str) -> Path:
    """``root/package``; the installed package when the project folder holds no copy."""
    here = root / package
    if here.is_dir() or package == "flows":
        return here
    return Path(__file__).parents[1] / package


def behaviour_files(root: Path | None = None) -> dict[str, Path]:
    """Relative path (``axtrace/ownership.py``) to file, for every file the version covers."""
    root = root or Path(__file__).parents[1]
    found: dict[str, Path] = {}
    for package in PACKAGES:
        folder = _folder(root, package)
        for path in folder.rglob("*.py") if folder.is_dir() else ():
            name = f"{package}/{path.relative_to(folder).as_posix()}"
            if "__pycache__" not in name and not name.startswith(NOT_BEHAVIOUR):
                found[name] = path
    return dict(sorted(found.items()))


def _normalised(path: Path) -> bytes:
    """The file's bytes with CRLF and CR read as LF."""
    return path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def digest(files: dict[str, Path]) -> str:
    """Hash of the files' relative paths and contents (line endings normalised)."""
    sha = hashlib.sha256()
    for name, path in sorted(files.items()):
        sha.update(name.encode() + b"\0" + _normalised(path) + b"\0")
    return sha.hexdigest()[:10]


def manifest(root: Path | None = None) -> dict[str, str]:
    """Each behaviour file's relative path and content hash: what a version was made of.
    ``sites apply`` records it with Prefect (:func:`manifest_key`) so ``verify --explain`` can
    name the files that differ between a deployed version and the code on disk."""
    return {name: hashlib.sha256(_normalised(path)).hexdigest()[:16]
            for name, path in behaviour_files(root).items()}


def manifest_key(version: str) -> str:
    """The Prefect artifact key of a version's manifest (lowercase letters, digits, dashes)."""
    return "workflow-manifest-" + re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-")


def manifest_changes(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """What differs from the recorded manifest to ``now``, one ``changed|added|removed: file``
    line per file, sorted by file."""
    changes = {name: "changed" for name in recorded.keys() & now.keys()
               if recorded[name] != now[name]}
    changes |= {name: "added" for name in now.keys() - recorded.keys()}
    changes |= {name: "removed" for name in recorded.keys() - now.keys()}
    return [f"{what}: {name}" for name, what in sorted(changes.items())]


def workflow_version(root: Path | None = None) -> str:
    """``<package version>+<hash of the behaviour files>``: equal wherever the code is equal.
    ``root`` is the project folder (``flows/`` is read from it; the packages too when it has
    them, else the installed ones)."""
    return f"{__version__}+{digest(behaviour_files(root))}"
