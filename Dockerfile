# Velro's web and worker image: `docker compose up` (docker-compose.yml), or
#   docker build -t velro . && docker run --env-file .env -p 8000:8000 velro
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# An unprivileged user runs the app; it owns only the data folder (media uploads).
RUN groupadd --system velro && useradd --system --gid velro --home-dir /app --no-create-home velro

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image and served by WhiteNoise. The settings need a
# (throwaway, build-only) SECRET_KEY with DEBUG off, and a DATABASE_URL so they do not
# start the embedded PostgreSQL; collectstatic never connects to it.
ENV VELRO_DATA_DIR=/data \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles \
    HOST=0.0.0.0 \
    PORT=8000
RUN SECRET_KEY=build-only-collectstatic-key-never-used-at-runtime-0123456789 \
    DEBUG=0 \
    DATABASE_URL=postgres://build:build@127.0.0.1:5432/build \
    python manage.py collectstatic --no-input --verbosity 1 \
 && mkdir -p /data/media /data/backups \
 && chown -R velro:velro /data

USER velro
EXPOSE 8000 8001

# gunicorn.conf.py: PORT, WEB_CONCURRENCY, GUNICORN_* from the environment. The events
# process (8001) is the same image: python manage.py run_events --host 0.0.0.0 --port 8001.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "velro.wsgi"]
