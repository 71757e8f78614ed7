"""One flavour of the client. Only the coroutine tree is hand-written; scripts/gen_sync.py makes the blocking one."""
