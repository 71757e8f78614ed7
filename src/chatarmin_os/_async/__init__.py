"""One flavour of the client: ``_async`` is hand-written, ``_sync`` is generated from it."""
