"""The quota ledger behind ``billing.reserve``: holds and metered-but-unacknowledged usage.

A reservation may go ahead only while

    usage the server reported + held + in flight + quantity <= limit

for its (product, company, feature). :mod:`.memory` keeps that sum in the process (exact
across its threads and tasks); :mod:`.redis_scripts` keeps it in Redis, checked and taken
in one Lua script, so every process sharing the Redis sees one quota. Both follow the same
rules (:mod:`.rules`); the twins in ``_async``/``_sync`` only add the waiting. How the
Redis ledger sends its scripts (one round trip a reservation, what waits for the next one
and for how long) is :mod:`.pipeline`.
"""
