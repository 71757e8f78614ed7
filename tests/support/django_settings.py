"""A minimal Django settings module for the integration tests: no database, no apps.

``configure()`` applies it once per process (``settings.configure``), so the tests need no
``DJANGO_SETTINGS_MODULE`` and nothing leaks into other tests' environment.
"""

from __future__ import annotations

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
ROOT_URLCONF = "tests.support.django_views"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True


def configure() -> None:
    """Configure Django with this module's settings (once per process)."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**{name: value for name, value in globals().items() if name.isupper()})
        django.setup()
