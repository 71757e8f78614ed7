"""A FastAPI app run by ``uvicorn --workers 2`` in the process tests (not a test module).

``GATES_REDIS_URL`` set: the cache (and so the quota ledger) is in that Redis, shared by
the workers; else each worker has its own. ``/ai`` and ``/fails`` hold in the gate
(``meter="after"``), ``/before/ai`` and ``/before/fails`` meter in it (``meter="before"``).
"""

from __future__ import annotations

import os

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from chatarmin_os import CacheOptions
from chatarmin_os.fastapi import ChatarminOSLifespan, require_feature

_redis_url = os.environ.get("GATES_REDIS_URL")

app = FastAPI(
    lifespan=ChatarminOSLifespan(
        cache=CacheOptions(redis_url=_redis_url) if _redis_url else True, max_retries=5
    )
)
_held = Depends(require_feature("ai_credit", external_org_id="X-Org-Id", track=True))
_metered = Depends(
    require_feature("ai_credit", external_org_id="X-Org-Id", track=True, meter="before")
)


@app.get("/healthz")
async def healthz() -> dict[str, int]:
    return {"pid": os.getpid()}


@app.post("/ai", dependencies=[_held])
@app.post("/before/ai", dependencies=[_metered])
async def ai() -> dict[str, bool]:
    return {"ok": True}


@app.post("/fails", dependencies=[_held])
@app.post("/before/fails", dependencies=[_metered])
async def fails() -> JSONResponse:
    return JSONResponse({"error": "the endpoint failed"}, status_code=500)
