"""The background usage buffer, the parts both clients share: options, events, stats, stores.

``billing.track_usage_later(...)`` validates its arguments, fixes the event's idempotency key
and puts the event in a store; the client's worker (``_async/_usage_buffer.py``, generated
into ``_sync/``) takes due events from the store and sends them as tRPC batches of
``billing.trackUsage`` calls. Nothing here does network I/O or waits:

* :mod:`.options`, :mod:`.events`, :mod:`.errors`, :mod:`.stats`: the public types;
* :mod:`.policy`: what an error means for an event (sent again, refused for good, a
  configuration problem that keeps it, a batch refused as a whole that is split), backoff;
* :mod:`.settlement`: what a batch's answers mean for its events;
* :mod:`.store`, :mod:`.memory_store`, :mod:`.spool`: where pending events wait (a deque, or
  a SQLite file in WAL mode that several processes may share; rows are leased while sent);
* :mod:`.ports`: what a buffer is given instead of its client (send, org lookup, listeners);
* :mod:`.core`: the buffer's bookkeeping, the base class of both twins;
* :mod:`.registry`: a client's buffers, one per API key and URL, shared with its copies.

(``_validate.usage_payload`` is the one builder of a ``billing.trackUsage`` input:
``track_usage`` and ``track_usage_later`` both use it.) A client imports only
:mod:`.registry` until a buffer is used. Every event carries a sequence number (the spool's
row id) so ``flush()`` can wait for "everything enqueued before now" without caring what
came later.
"""
