"""The cores of the client: everything of the request loop that does not wait.

Both twins (``_async`` and the generated ``_sync``) inherit these classes and add only the
methods that wait or start work. Nothing here imports ``_async`` or ``_sync``.
"""
