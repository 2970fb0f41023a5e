# syntax=docker/dockerfile:1
# Dyad in two stages: build the pinned virtualenv, then run it as a non-root user.
#   docker build -t dyad .
#   docker run --rm -p 8000:8000 -v dyad-data:/var/lib/dyad dyad

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
# The pinned runtime set on its own layer, so that a code change does not reinstall it.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock

# app.migrate finds alembic.ini and migrations/ next to the app package, so the project is
# installed in place (editable) at /app: the runtime stage puts the same files at the same path.
COPY pyproject.toml README.md ./
COPY app/ app/
RUN pip install --no-cache-dir --no-deps -e .


FROM python:3.11-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DYAD_DATABASE_URL=sqlite:////var/lib/dyad/dyad.db \
    DYAD_SEED_FILE=/app/data/seed.json

# The code stays owned by root (read-only to the service); only the data directory is writable.
RUN groupadd --system --gid 10001 dyad \
    && useradd --system --uid 10001 --gid dyad --home-dir /var/lib/dyad --no-create-home \
        --shell /usr/sbin/nologin dyad \
    && install -d -o dyad -g dyad -m 0750 /var/lib/dyad

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY pyproject.toml alembic.ini ./
COPY app/ app/
COPY migrations/ migrations/
COPY data/seed.json data/seed.json
COPY docker/entrypoint.sh docker/entrypoint.sh

USER dyad
EXPOSE 8000
# slim has no curl: ask /healthz with the standard library (urlopen raises on non-2xx).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
# Migrate, seed when the seed changed, then serve; arguments go to `dyad serve` (--workers 4).
ENTRYPOINT ["bash", "/app/docker/entrypoint.sh"]
