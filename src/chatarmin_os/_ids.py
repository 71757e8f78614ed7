"""Idempotency keys: random UUIDs (version 4), made without importing :mod:`uuid`."""

from __future__ import annotations

import os

__all__ = ["new_idempotency_key", "random_uuid"]


def random_uuid() -> str:
    """A fresh random UUID4 as text (``"1b4e28ba-2fa1-4d3b-9f5e-8c6a2f1d0e7a"``)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


new_idempotency_key = random_uuid
"""The key ``track_usage`` sends when you give none: a fresh random UUID4."""
