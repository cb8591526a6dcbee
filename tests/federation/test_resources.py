"""The data files travel with the packages: found through importlib.resources, never
from a module's ``__file__``, and each one named in pyproject.toml's package data, so a
wheel carries it (tests/e2e/test_wheel_install.py installs one and serves from it)."""

from __future__ import annotations

import ast
import os
import tomllib
from pathlib import Path

from federation import jsonld, resources

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("node", "federation")


def test_the_packaged_schemas_are_the_checkouts_single_copy() -> None:
    packaged = resources.on_disk(resources.schemas())

    assert packaged.resolve() == (ROOT / "schemas").resolve()
    assert (ROOT / "federation" / "schemas").is_symlink()
    assert resources.on_disk(jsonld.CONTEXTS_DIR).resolve() == ROOT / "schemas" / "contexts"


def test_no_module_finds_files_from_its_own_location() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if any(
            isinstance(node, ast.Name) and node.id == "__file__"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]

    assert offenders == []


def data_files(package: str) -> set[str]:
    """Every file of the package that is neither Python source nor documentation (a
    README the code does not read), links followed."""
    found: set[str] = set()
    top = ROOT / package
    for folder, dirs, names in os.walk(top, followlinks=True):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if not name.endswith((".py", ".pyc", ".md")):
                found.add(str((Path(folder) / name).relative_to(top)))
    return found


def test_every_data_file_is_declared_as_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = config["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        top = ROOT / package
        matched = {
            str(path.relative_to(top))
            for pattern in declared.get(package, [])
            for path in top.glob(pattern)
            if path.is_file()
        }

        assert data_files(package) - matched == set(), package
