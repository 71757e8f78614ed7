"""The async client (hand-written; the source of the generated ``_sync`` package)."""
