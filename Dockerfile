# The web and worker image (one image, two commands; see docker-compose.yml), installed from uv.lock
# exactly as scripts/_venv.sh installs .venv: uv from locks/uv.txt (pinned, with hashes), then
# `uv sync --frozen`, never from the ranges in pyproject.toml.
FROM python:3.11.17-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1 UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY locks/uv.txt ./locks/uv.txt
RUN pip install --require-hashes -r locks/uv.txt
# The locked dependencies in their own layer, rebuilt only when uv.lock changes. The project itself is
# not installed (pyproject: tool.uv package = false); it runs from /app.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev
COPY auditproject ./auditproject
COPY annotations ./annotations
COPY inference ./inference
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 audit && mkdir -p /app/data && chown audit /app/data
USER audit
EXPOSE 8000
CMD ["gunicorn", "auditproject.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
