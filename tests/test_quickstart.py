"""``examples/quickstart.py`` runs as written against the in-process local ChatarminOS."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.py"


def test_quickstart_runs_offline() -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("OS_API_KEY", "CHATARMIN_OS_BASE_URL", "CHATARMIN_OS_LOG")
    }
    completed = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = completed.stdout
    assert completed.returncode == 0, f"exit {completed.returncode}\n{out}\n{completed.stderr}"
    assert completed.stderr == ""
    assert "No OS_API_KEY set: using a local ChatarminOS in this process" in out

    # 1. onboarding on the free tier
    assert re.search(r"company Acme Inc \([0-9a-f-]{36}\): created$", out, re.M), out
    assert "free tier applied: True" in out
    # 2. the feature gate
    assert "ai_credit: enabled=True can_use=True usage=0/100 remaining=100" in out
    # 3. idempotency: the retry is a duplicate and is not counted again
    assert "first call:  usage=10 duplicate=False" in out
    assert "same key:    usage=10 duplicate=True" in out
    assert "nothing was double counted" in out
    # 4. the limit
    assert "tracked 90: usage=100 at_limit=True" in out
    assert "one more is refused: PreconditionFailedError (PRECONDITION_FAILED): " in out
    assert "ai_credit: enabled=True can_use=False usage=100/100 remaining=0" in out
    assert "one more was accepted" not in out
    # 5. the billing status
    assert "billing profile: False" in out
    assert "active subscriptions: 0" in out
    assert "enabled features: 3" in out
    assert out.rstrip().endswith("Done.")
