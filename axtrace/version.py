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


def digest(files: dict[str, Path]) -> str:
    """Hash of the files' relative paths and contents (CRLF and CR read as LF)."""
    sha = hashlib.sha256()
    for name, path in sorted(files.items()):
        text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        sha.update(name.encode() + b"\0" + text + b"\0")
    return sha.hexdigest()[:10]


def workflow_version(root: Path | None = None) -> str:
    """``<package version>+<hash of the behaviour files>``: equal wherever the code is equal.
    ``root`` is the project folder (``flows/`` is read from it; the packages too when it has
    them, else the installed ones)."""
    return f"{__version__}+{digest(behaviour_files(root))}"
