"""Tests of the web-framework integrations (FastAPI, Django, Celery)."""
