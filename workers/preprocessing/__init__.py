"""Preprocessing jobs: plain modules (no Celery) and one thin tasks.py."""
