#!/usr/bin/env python3
"""What importing the SDK and making its first call cost, against baselines in the same run.

    uv run python benchmarks/bench_startup.py [--rounds 15]

Each measurement runs in a fresh interpreter (a subprocess) and times itself with
``time.perf_counter`` from before its first import to the end of its work, so interpreter
start-up is left out. Rounds are interleaved (every case once per round, in turn) and the
median of each case is reported.

1. ``import chatarmin_os`` against the floor of its dependencies, ``import httpx, anyio,
   pydantic``. Target: at most 0.25x (the package imports its public names on first use).
2. ``import chatarmin_os`` + a client + one ``features.check`` against the same with raw
   httpx + pydantic (an ``httpx.Client``, a GET, ``json.loads``, a pydantic model of the same
   shape) on an in-memory transport. Target: at most 1.15x.
3. ``import chatarmin_os.testing.pytest_plugin`` with pytest already imported (as in a test
   run): what the plugin entry point costs every test run of every project that has the
   package installed, used or not (reported in ms; it should be about nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

PRELUDE = "import time\nt0 = time.perf_counter()\n"
# Imported before the clock starts: what the case's setting has loaded already.
SETUP = {"pytest plugin entry point": "import pytest\n"}
REPORT = "\nprint(time.perf_counter() - t0)\n"

ANSWER = (
    '{"result":{"data":{"featureCode":"ai_credit","isEnabled":true,"canUse":true,'
    '"hasQuantity":true,"currentUsage":5,"quantityLimit":100,"includedQuantity":50,'
    '"remaining":95}}}'
)

CASES: dict[str, str] = {
    "deps floor": "import httpx, anyio, pydantic",
    "import chatarmin_os": "import chatarmin_os",
    "raw first call": f"""
import json
import httpx
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

class Access(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    feature_code: str
    is_enabled: bool
    can_use: bool
    has_quantity: bool
    current_usage: int
    quantity_limit: int | None
    included_quantity: int | None
    remaining: int | None

body = {ANSWER!r}.encode()
http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))
url = 'https://bench.invalid/api/v1/features.check?input=%7B%22companyId%22%3A%22c1%22%7D'
Access.model_validate(json.loads(http.get(url).content)['result']['data'])
""",
    "SDK first call": f"""
import httpx
from chatarmin_os import ChatarminOS

body = {ANSWER!r}.encode()
http = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body)))
client = ChatarminOS(api_key='os_sk_bench', base_url='https://bench.invalid/api/v1', http_client=http)
client.features.check(company_id='c1', feature_code='ai_credit')
""",
    "pytest plugin entry point": "import chatarmin_os.testing.pytest_plugin",
}


# Bytecode caches are written (a warm-up round fills them), as an installed package has
# them: with PYTHONDONTWRITEBYTECODE set, every run would compile our modules from source
# while the dependencies' caches already exist, which is not what users pay.
ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def run(code: str, setup: str = "") -> float:
    out = subprocess.run(
        [sys.executable, "-c", setup + PRELUDE + code + REPORT],
        capture_output=True,
        text=True,
        check=True,
        env=ENV,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for name, code in CASES.items():  # warm-up: bytecode caches, OS file cache
        run(code, SETUP.get(name, ""))
    for _ in range(rounds):
        for name, code in CASES.items():
            times[name].append(run(code, SETUP.get(name, "")))
    median = {name: statistics.median(values) for name, values in times.items()}
    for name, value in median.items():
        print(f"{name:28} {value * 1000:8.1f} ms (median of {rounds})")
    bare = median["import chatarmin_os"] / median["deps floor"]
    first = median["SDK first call"] / median["raw first call"]
    print(f"import chatarmin_os / deps floor:        {bare:5.2f}x  (target <= 0.25)")
    print(f"SDK first call / raw httpx + pydantic:   {first:5.2f}x  (target <= 1.15)")


if __name__ == "__main__":
    main()
