"""Test your own app against a local ChatarminOS, without mocks.

The pytest plugin (registered automatically when ``chatarmin-os`` is installed) gives each
test a fresh in-memory ChatarminOS and clients bound to it:

* ``chatarmin_os_local`` — a :class:`LocalChatarminOS`: seed it, read what was tracked;
* ``chatarmin_os_client`` — a :class:`~chatarmin_os.ChatarminOS` bound to it;
* ``chatarmin_os_async_client`` — an :class:`~chatarmin_os.AsyncChatarminOS` bound to it;
* ``chatarmin_os_server`` — a :class:`ChatarminOSServer`: the same ChatarminOS over HTTP on a
  free port of 127.0.0.1, with ``OS_API_KEY`` and ``CHATARMIN_OS_BASE_URL`` set for the test.

``chatarmin_os_local.faults`` (:class:`Faults`) makes the next calls to a procedure fail:
an error status (429 with ``Retry-After``, 503, ...), a timeout or a dropped answer.

Example::

    def test_ai_credits_are_metered(chatarmin_os_local, chatarmin_os_client):
        company_id = chatarmin_os_local.add_company(
            "Acme", external_org_id="org_1", tier="free", limits={"ai_credit": 10}
        )
        my_app.summarise(chatarmin_os_client, org_id="org_1")   # your code under test
        chatarmin_os_local.assert_usage(company_id, "ai_credit", 1)

Outside pytest, make a :class:`LocalChatarminOS` yourself.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._faults import Fault, Faults, FiredFault
    from ._local import LocalChatarminOS
    from ._server import ChatarminOSServer

__all__ = ["ChatarminOSServer", "Fault", "Faults", "FiredFault", "LocalChatarminOS"]

# Imported on first use (PEP 562): the pytest plugin imports this package in every test run
# of every project that has chatarmin-os installed, so it must cost next to nothing.
_LAZY = {
    "ChatarminOSServer": "._server",
    "Fault": "._faults",
    "Faults": "._faults",
    "FiredFault": "._faults",
    "LocalChatarminOS": "._local",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
