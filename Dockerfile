# cip-ml image. Stages (targets):
#   app        the package installed as the README installs it; base of the others
#   dashboard  app + optuna-dashboard (docker-compose.yml, profile `dashboard`)
#   worker     the default target (last stage): `cipml worker`; the same image runs
#              migrate, every worker family, beat and Flower
FROM python:3.11-slim AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    CIPML_HOME=/var/lib/cipml/home \
    NUMBA_CACHE_DIR=/var/lib/cipml/numba

# Runs as this user, never root (Celery also warns against running workers as root).
RUN groupadd --system --gid 10001 cipml \
 && useradd --system --uid 10001 --gid cipml --home-dir /var/lib/cipml --shell /usr/sbin/nologin cipml

# As the README: a venv, then `pip install -e .` from the repository (without the [dev]
# tools). Editable on purpose: `cipml demo` finds its bundled file at <repo>/data, next to
# the `workers` package, which a non-editable install would move into site-packages.
RUN python -m venv /opt/venv
WORKDIR /app

# The dependencies first, listed from pyproject.toml: this layer is rebuilt only when
# pyproject.toml changes, not on every code change.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The repository (.dockerignore keeps out tests, benchmarks, local state and any data file
# but the bundled demo file data/cdnow_transactions.parquet), owned by root: read-only to
# the service.
COPY . .
RUN pip install -e .

# State lives outside the code: CIPML_HOME (beat's schedule file, embedded defaults), and
# the mount points of the artifact volume and the input data (docker-compose.yml).
# Relative paths resolve against /app, so the default data root ./data is the bundled data.
RUN mkdir -p /var/lib/cipml/home /var/lib/cipml/data /var/lib/cipml/artifacts /var/lib/cipml/numba \
 && chown -R cipml:cipml /var/lib/cipml
USER cipml

CMD ["cipml", "worker"]


FROM app AS dashboard
# Into the same venv, so the dashboard reads the studies with the workers' Optuna version.
USER root
RUN pip install "optuna-dashboard>=0.15"
USER cipml
EXPOSE 8080
CMD ["sh", "-c", "exec optuna-dashboard --host=0.0.0.0 --port=8080 \"$CIPML_OPTUNA_STORAGE_URL\""]


# The default target (`docker build .` builds this one).
FROM app AS worker
