"""Start and stop a real vLLM OpenAI-compatible server on this machine (CPU), for the demo and the tests.

No pytest or Django import here: the module is plain standard library, so benchmarks and
scripts can use it too. Typical use in a pytest fixture::

    with start_vllm_server(ensure_tiny_model(), "tiny-llama") as server:
        yield server  # talk to server.base_url, e.g. http://127.0.0.1:PORT/v1

and for SmolLM2-135M-Instruct, a real instruction-tuned model::

    start_vllm_server(ensure_smollm2_model(), "smollm2-135m-instruct", extra_args=SMOLLM2_ARGS)

For the demo, serve one in the foreground until Ctrl-C::

    python -m inference.vllm_local smollm2 --port 8000

The server runs with the python of the separate vLLM venv (`$VLLM_PYTHON`, else
`<repo>/.venv-vllm/bin/python`, made by scripts/setup_vllm_cpu.sh) through
scripts/vllm_launch.py, in its own process group, so `stop()` also ends the engine processes it
spawns.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "scripts"
MODELS_DIR = REPO_ROOT / ".cache" / "models"
TINY_MODEL_DIR = MODELS_DIR / "tiny-llama"
SMOLLM2_MODEL_DIR = MODELS_DIR / "smollm2-135m-instruct"
TINY_CLASSIFIER_DIR = MODELS_DIR / "tiny-roberta"

# fmt: off
# Flags that suit the tiny random Llama: float32 weights, no graph capture, a small KV cache.
TINY_MODEL_ARGS: tuple[str, ...] = (
    "--dtype", "float32",
    "--enforce-eager",
    "--kv-cache-memory-bytes", "64M",
    "--max-num-seqs", "32",
    "--max-model-len", "2048",
)
# Flags that suit SmolLM2-135M-Instruct (measured in shared/notes/vllm-on-cpu.md).
SMOLLM2_ARGS: tuple[str, ...] = (
    "--dtype", "bfloat16",
    "--enforce-eager",
    "--kv-cache-memory-bytes", "256M",
    "--max-num-seqs", "32",
    "--max-model-len", "2048",
)
# Flags that suit the tiny random RoBERTa classifier, served by vLLM's pooling runner at /classify.
TINY_CLASSIFIER_ARGS: tuple[str, ...] = (
    "--runner", "pooling",
    "--dtype", "float32",
    "--enforce-eager",
    "--kv-cache-memory-bytes", "64M",
    "--max-model-len", "512",
)
# fmt: on

SERVER_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


class VLLMServerError(RuntimeError):
    """The vLLM server could not be set up or started."""


def vllm_python() -> Path:
    """Return the python of the vLLM venv: `$VLLM_PYTHON`, else `<repo>/.venv-vllm/bin/python`."""
    override = os.environ.get("VLLM_PYTHON")
    if override:
        return Path(override)
    venv = os.environ.get("VLLM_VENV")
    return (Path(venv) if venv else REPO_ROOT / ".venv-vllm") / "bin" / "python"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _run(cmd: Sequence[str | os.PathLike[str]], *, what: str) -> None:
    """Run a setup command, raising VLLMServerError with its output if it fails."""
    result = subprocess.run(  # noqa: S603 (our own scripts, argument list, no shell)
        [str(part) for part in cmd],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **SERVER_ENV},
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-4000:]
        raise VLLMServerError(f"{what} failed with exit code {result.returncode}:\n{output}")


@contextlib.contextmanager
def _setup_lock() -> Iterator[None]:
    """Serialise venv setup and model builds between processes (e.g. pytest-xdist workers)."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with (MODELS_DIR / ".setup.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ensure_venv_locked() -> Path:
    """Run scripts/setup_vllm_cpu.sh unless VLLM_PYTHON names a python; the caller holds the lock."""
    python = vllm_python()
    if "VLLM_PYTHON" in os.environ:
        if not python.exists():
            raise VLLMServerError(f"VLLM_PYTHON={python} does not exist")
        return python
    _run(["bash", SCRIPTS_DIR / "setup_vllm_cpu.sh"], what="scripts/setup_vllm_cpu.sh")
    return python


def _ensure_model(script: str, path: Path | str) -> Path:
    """Run a model build script with the vLLM venv's python (the scripts skip finished builds)."""
    model_dir = Path(path).resolve()
    with _setup_lock():
        python = _ensure_venv_locked()
        _run([python, SCRIPTS_DIR / script, model_dir], what=f"scripts/{script}")
    return model_dir


def ensure_tiny_model(path: Path | str = TINY_MODEL_DIR) -> Path:
    """Make sure the vLLM venv and the tiny random Llama at `path` exist; return the model dir."""
    return _ensure_model("build_tiny_llama.py", path)


def ensure_tiny_classifier(path: Path | str = TINY_CLASSIFIER_DIR) -> Path:
    """Make sure the vLLM venv and the tiny random RoBERTa classifier at `path` exist; return its dir."""
    return _ensure_model("build_tiny_roberta.py", path)


def ensure_smollm2_model(path: Path | str = SMOLLM2_MODEL_DIR) -> Path:
    """Make sure the vLLM venv and the converted SmolLM2-135M-Instruct exist; return its dir."""
    return _ensure_model("build_smollm2.py", path)


@dataclass
class VLLMServer:
    """A running vLLM server subprocess; stop it with `stop()` or use it as a context manager."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    served_model_name: str
    log_path: Path
    _log_file: IO[bytes] | None = field(repr=False, default=None)

    @property
    def root_url(self) -> str:
        """Return the server's root URL, e.g. http://127.0.0.1:8000."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Return the OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1."""
        return f"{self.root_url}/v1"

    def is_alive(self) -> bool:
        """Tell whether the server process is still running."""
        return self.process.poll() is None

    def log_tail(self, max_chars: int = 6000) -> str:
        """Return the end of the server's log file."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-max_chars:]

    def wait_ready(self, timeout: float) -> None:
        """Poll GET /v1/models until it answers; raise VLLMServerError if the server dies or stalls."""
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/models"
        while True:
            if not self.is_alive():
                raise VLLMServerError(
                    f"vLLM server exited with code {self.process.returncode} before it was "
                    f"ready; log {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (http://127.0.0.1 we built)
                    body = json.loads(response.read())
                if any(model.get("id") == self.served_model_name for model in body["data"]):
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise VLLMServerError(
                    f"vLLM server not ready after {timeout:.0f} s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 15.0) -> None:
        """Stop the server's whole process group: SIGTERM, then SIGKILL after `grace` seconds."""
        if self.is_alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=grace)
        # Children may outlive a leader that exited by itself; the group id is the leader's pid.
        self._signal_group(signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the server's process group, ignoring a group that is already gone."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_vllm_server(
    model_dir: Path | str,
    served_model_name: str,
    *,
    extra_args: Iterable[str] = TINY_MODEL_ARGS,
    timeout: float = 180.0,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | str | None = None,
) -> VLLMServer:
    """Start `vllm serve model_dir` on a free local port and return it once /v1/models answers.

    `extra_args` are passed to `vllm serve` after the host, port and served name; the default
    suits the tiny test model (see TINY_MODEL_ARGS and SMOLLM2_ARGS). The server's output goes
    to `log_path` (a temporary file by default). Raises VLLMServerError, with the end of the log,
    if the process exits or is not ready within `timeout` seconds. When the port was chosen here
    and another process took it before vLLM bound it, the start is retried on a new port.
    """
    python = vllm_python()
    if not python.exists():
        raise VLLMServerError(f"{python} not found: run scripts/setup_vllm_cpu.sh or set VLLM_PYTHON")
    args = tuple(extra_args)
    attempts_left = 1 if port else 3
    while True:
        attempts_left -= 1
        try:
            return _start_once(
                python=python,
                model_dir=model_dir,
                served_model_name=served_model_name,
                extra_args=args,
                timeout=timeout,
                host=host,
                port=port or free_port(host),
                log_path=log_path,
            )
        except VLLMServerError as exc:
            if not attempts_left or "address already in use" not in str(exc).lower():
                raise


def _start_once(
    *,
    python: Path,
    model_dir: Path | str,
    served_model_name: str,
    extra_args: tuple[str, ...],
    timeout: float,
    host: str,
    port: int,
    log_path: Path | str | None,
) -> VLLMServer:
    """Start the server once on `port` and wait until it is ready."""
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix=f"vllm-{served_model_name}-{port}-", suffix=".log")
        os.close(handle)
        log_path = name
    log_path = Path(log_path)
    cmd = [
        str(python),
        str(SCRIPTS_DIR / "vllm_launch.py"),
        "serve",
        str(Path(model_dir).resolve()),
        "--host",
        host,
        "--port",
        str(port),
        "--served-model-name",
        served_model_name,
        *extra_args,
    ]
    log_file = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 (vLLM's launcher, argument list, no shell)
        cmd,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, **SERVER_ENV, "VLLM_LAUNCH_PARENT_PID": str(os.getpid())},
        start_new_session=True,
    )
    server = VLLMServer(
        process=process,
        host=host,
        port=port,
        served_model_name=served_model_name,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


def main(argv: list[str] | None = None) -> int:
    """Serve the tiny or the SmolLM2 model in the foreground until Ctrl-C (for the demo)."""
    parser = argparse.ArgumentParser(description="Serve a local model with vLLM on CPU.")
    parser.add_argument("model", choices=["tiny", "smollm2"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--timeout", type=float, default=300.0)
    options = parser.parse_args(argv)
    # Turn SIGTERM into SystemExit so the `with` block below stops the server's process group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if options.model == "tiny":
        model_dir, name, extra = ensure_tiny_model(), "tiny-llama", TINY_MODEL_ARGS
    else:
        model_dir, name, extra = ensure_smollm2_model(), "smollm2-135m-instruct", SMOLLM2_ARGS
    with start_vllm_server(
        model_dir, name, extra_args=extra, timeout=options.timeout, host=options.host, port=options.port
    ) as server:
        print(f"serving {name} at {server.base_url} (log {server.log_path}); Ctrl-C stops it", flush=True)  # noqa: T201
        try:
            server.process.wait()
        except KeyboardInterrupt:
            return 0
        print(f"vLLM server exited with code {server.process.returncode}:\n{server.log_tail()}")  # noqa: T201
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
