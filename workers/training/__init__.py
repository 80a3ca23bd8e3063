"""Training jobs: plain modules (no Celery) for binary-classification models."""
