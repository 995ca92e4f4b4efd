"""Shared by the model builders: a marker file says a folder is complete; folders appear atomically."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def is_complete(outdir: Path, marker: str, params: dict) -> bool:
    """Tell whether `outdir` holds a finished build made with exactly `params`."""
    path = outdir / marker
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()) == params
    except ValueError:
        return False


def save_atomically(outdir: Path, marker: str, params: dict, write: Callable[[Path], None]) -> bool:
    """Let `write` fill a staging folder, add the marker, then rename it to `outdir`.

    Returns False when another process finished the same build first (its folder is kept), so two
    test workers building at once never leave a half-written model behind.
    """
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        write(staging)
        (staging / marker).write_text(json.dumps(params, indent=2, sort_keys=True))
        if outdir.exists():
            if is_complete(outdir, marker, params):
                return False
            shutil.rmtree(outdir)
        staging.chmod(0o755)
        staging.rename(outdir)
        return True
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def main(build: Callable[[Path], None], description: str, argv: list[str] | None = None) -> int:
    """The builders' command line: one argument, the folder to write the model into."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("outdir", type=Path, help="folder to write the model into")
    build(parser.parse_args(argv).outdir.resolve())
    return 0
