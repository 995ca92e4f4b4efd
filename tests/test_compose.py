"""docker-compose.yml has every service and passes every variable the settings read."""

import re

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


def test_every_setting_variable_is_documented_in_the_readme():
    import auditproject.settings  # noqa: F401  (fills env.READ)

    readme = (REPO / "README.md").read_text()
    missing = sorted(name for name in env.READ if f"`{name}`" not in readme)
    assert not missing, f"README.md does not document {missing}"
