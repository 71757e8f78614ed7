"""The ``chatarmin_os`` logger and the ``CHATARMIN_OS_LOG`` switch.

``CHATARMIN_OS_LOG=debug`` (or ``info``) attaches a stderr handler to the ``chatarmin_os``
logger at that level the first time a client is made. Log lines never contain request
headers, so the API key cannot reach a log.
"""

from __future__ import annotations

import logging
import os

__all__ = ["logger", "setup_logging"]

logger = logging.getLogger("chatarmin_os")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_configured = False


def setup_logging() -> None:
    """Apply ``CHATARMIN_OS_LOG`` once per process; a no-op when it is unset."""
    global _configured
    if _configured:
        return
    _configured = True
    level = _LEVELS.get(os.environ.get("CHATARMIN_OS_LOG", "").strip().lower())
    if level is None:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    logger.addHandler(handler)
    logger.setLevel(level)
