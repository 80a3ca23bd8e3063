# cip-ml worker image: `cipml worker` by default; the same image runs migrate, beat and Flower.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Runs as this user, never root (Celery also warns against running workers as root).
RUN groupadd --system --gid 10001 cipml \
 && useradd --system --uid 10001 --gid cipml --home-dir /var/lib/cipml --shell /usr/sbin/nologin cipml

# Install the package (not editable); the source tree is not kept in the image.
COPY pyproject.toml README.md /tmp/cipml-src/
COPY api_client /tmp/cipml-src/api_client
COPY storage /tmp/cipml-src/storage
COPY workers /tmp/cipml-src/workers
COPY scheduler /tmp/cipml-src/scheduler
RUN pip install /tmp/cipml-src && rm -rf /tmp/cipml-src

# Working directory = state: CIPML_HOME defaults to ./.cipml (beat's schedule file lives
# there) and ./data is a default data root. Compose mounts volumes on the artifact folder.
RUN mkdir -p /var/lib/cipml/.cipml /var/lib/cipml/data /var/lib/cipml/artifacts \
 && chown -R cipml:cipml /var/lib/cipml
WORKDIR /var/lib/cipml
USER cipml

CMD ["cipml", "worker"]
