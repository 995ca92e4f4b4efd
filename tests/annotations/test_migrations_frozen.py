"""Migrations are frozen: they import nothing from the project, and the SQL they carry is what the live
modules would install today (a change to that SQL needs a new migration carrying the new copy)."""

import ast
import importlib

import pytest

from annotations.analysis import tallies
from annotations.labelling import submit_sql
from tests.conftest import REPO

PROJECT_PACKAGES = {"annotations", "inference", "auditproject", "tests"}
MIGRATION_FILES = sorted(
    path for app in ("annotations", "inference") for path in (REPO / app / "migrations").glob("0*.py")
)


def _project_imports(path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else ["." * node.level + (node.module or "")]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] in PROJECT_PACKAGES]
        found += [f"line {node.lineno}: {name}" for name in names if name.startswith(".")]
    return found


def test_there_are_migrations_to_check():
    assert len(MIGRATION_FILES) >= 9


@pytest.mark.parametrize("path", MIGRATION_FILES, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_no_migration_imports_the_project(path):
    assert not _project_imports(path), f"{path.name} imports live project code: {_project_imports(path)}"


def test_the_check_sees_an_import(tmp_path):
    probe = tmp_path / "0099_probe.py"
    probe.write_text("from django.db import migrations\nfrom annotations import tallies\nfrom . import x\n")
    assert _project_imports(probe) == ["line 2: annotations", "line 3: ."]


# The newest migration that carries each piece of installed SQL, and the live module it was rendered from.
@pytest.mark.parametrize(
    ("migration", "name", "live"),
    [
        ("0006_tallies", "INSTALL", tallies.INSTALL),
        ("0006_tallies", "UNINSTALL", tallies.UNINSTALL),
        ("0006_tallies", "REBUILD", tallies.rebuild_statements(None)[0]),
        ("0011_score_tally", "INSTALL", tallies.SCORE_INSTALL),
        ("0011_score_tally", "UNINSTALL", tallies.SCORE_UNINSTALL),
        ("0011_score_tally", "REBUILD", tallies.score_rebuild_statements(None)[0]),
        ("0008_label_submit_function", "INSTALL", submit_sql.INSTALL),
        ("0008_label_submit_function", "UNINSTALL", submit_sql.UNINSTALL),
    ],
)
def test_frozen_sql_is_what_the_module_installs_today(migration, name, live):
    frozen = getattr(importlib.import_module(f"annotations.migrations.{migration}"), name)
    assert frozen == live, (
        f"annotations.migrations.{migration}.{name} differs from the live SQL: add a migration that "
        "installs the new SQL (frozen in it) and point this test at it"
    )
