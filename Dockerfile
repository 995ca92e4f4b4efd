# The web and worker image (one image, two commands; see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY auditproject ./auditproject
COPY annotations ./annotations
COPY inference ./inference
RUN pip install .
COPY manage.py ./
COPY templates ./templates
COPY static ./static
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 audit && mkdir -p /app/data && chown audit /app/data
USER audit
EXPOSE 8000
CMD ["gunicorn", "auditproject.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
