"""Test helpers: modules the tests import, never test files themselves (pytest collects none).

- ``helpers``: the test API key and base URL, tRPC envelopes (``ok``, ``trpc_error``), decoding
  what a request sent, a hand-moved ``Clock`` and recorded ``Sleeps``, ``in_ci``, ``run_python``.
- ``canned``: one valid answer per procedure (``COMPANY``, ``ACCESS``, ``USAGE`` ...), the
  ``CannedServer`` mock that gives them, ``wire_json``.
- ``cases``: every public method, case by case (call, procedure, input, output) for the wire
  and conformance tests.
- ``concurrently``: ``arun_all`` (tasks) / ``run_all`` (threads), rewritten by ``gen_sync``.
- ``_async/batching_helpers`` (generated into ``_sync/``): hold a batch open until N calls.
- ``cache_harness``: the local ChatarminOS behind a recording, failing transport, cache clients.
- ``cache_peer``: another process sharing the cache through Redis (``python -m``).
- ``redis_server``: a real ``redis-server`` on a free port.
- ``serve_process``: a real ``chatarmin-os serve`` subprocess; ``served``: one over a database
  file and what it counted (the usage-buffer and Celery tests).
- ``usage_buffer_process``: a tracking process for the usage-buffer process tests (``python -m``).
- ``keepalive_server``: an HTTP/1.1 keep-alive server whose idle timeout runs on a test clock.
- ``cli_process``: the real ``chatarmin-os`` console script in a subprocess.
- ``import_data``: rows, a recording transport and state checks for the import tests.
- ``reference_server``: the Node ``@trpc/server`` reference router (files in
  ``tests/conformance/``); ``needs``: start it or skip/fail, and ``require`` an optional extra.
- ``celery_app``: the Celery app real workers run (``celery -A tests.support.celery_app``).
- ``django_settings`` / ``django_views``: a minimal Django project for the integration tests.
"""
