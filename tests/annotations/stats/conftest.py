"""Fixtures for the pure-statistics tests: the published reference vectors in shared/data."""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    """The shared folder: $AUDIT_SHARED_DIR, else the `shared` folder beside the repository."""
    return Path(os.environ.get("AUDIT_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def vectors() -> dict[str, dict[str, Any]]:
    """Reference vectors by id, from shared/data/stats_vectors.json."""
    path = shared_dir() / "data" / "stats_vectors.json"
    if not path.is_file():
        pytest.fail(f"reference vectors not found at {path}: set AUDIT_SHARED_DIR")
    return {v["id"]: v for v in json.loads(path.read_text())["vectors"]}


def codes_from_reliability_data(rows: list[list[Any]], categories: list[Any]) -> np.ndarray:
    """(items x raters) codes 0..K-1 (-1 = missing) from observers x units data with nulls."""
    index = {c: i for i, c in enumerate(categories)}
    return np.array([[-1 if v is None else index[v] for v in row] for row in rows]).T
