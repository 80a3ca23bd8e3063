"""Entry point for `celery -A workers.app worker`: the app built from the environment."""

from __future__ import annotations

from workers.celery_app import create_app
from workers.settings import Settings

app = create_app(Settings())
