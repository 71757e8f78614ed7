"""ChatarminOS quickstart: onboard a customer, gate a feature, meter usage, read billing.

    uv run python examples/quickstart.py

With no ``OS_API_KEY`` in the environment it runs against a local ChatarminOS inside this
process (no API key, no network). With ``OS_API_KEY`` set it runs against your deployment
(``CHATARMIN_OS_BASE_URL`` or the hosted API), creating a fresh org id each run.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

from chatarmin_os import AsyncChatarminOS, FeatureAccess, PreconditionFailedError

FEATURE = "ai_credit"


def show_access(access: FeatureAccess) -> None:
    limit = "unlimited" if access.quantity_limit is None else access.quantity_limit
    print(
        f"   {access.feature_code}: enabled={access.is_enabled} can_use={access.can_use} "
        f"usage={access.current_usage}/{limit} remaining={access.remaining}"
    )


async def main() -> int:
    if os.environ.get("OS_API_KEY"):
        client = AsyncChatarminOS()
        print(f"Using the ChatarminOS at {client.base_url}")
    else:
        client = AsyncChatarminOS.local()
        print("No OS_API_KEY set: using a local ChatarminOS in this process (no network).")

    async with client:
        org_id = f"org_quickstart_{uuid.uuid4().hex[:8]}"
        print(f"\n1. Onboard {org_id} on the free tier")
        result = await client.onboard(
            external_org_id=org_id,
            label="Quickstart",
            hints={"company_name": "Acme Inc", "domain": f"{org_id}.example"},
            tier_code="free",
            contact_email=f"founder@{org_id}.example",
            contact_name="Jane Founder",
        )
        company_id = result.company_id
        tier_applied = result.billing_status.tier_applied if result.billing_status else False
        print(f"   company {result.company_name} ({company_id}): {result.link_status}")
        print(f"   free tier applied: {tier_applied}")

        print(f"\n2. Gate the {FEATURE!r} feature")
        access = await client.features.check(company_id=company_id, feature_code=FEATURE)
        show_access(access)
        if not access.can_use:
            print("   not usable on this plan: stopping here")
            return 1

        print("\n3. Track usage with an idempotency key, then retry the same call")
        key = f"request_{uuid.uuid4()}"
        first = await client.billing.track_usage(
            company_id=company_id, feature_code=FEATURE, quantity=10, idempotency_key=key
        )
        print(f"   first call:  usage={first.current_usage} duplicate={first.duplicate}")
        again = await client.billing.track_usage(
            company_id=company_id, feature_code=FEATURE, quantity=10, idempotency_key=key
        )
        print(f"   same key:    usage={again.current_usage} duplicate={again.duplicate}")
        assert again.current_usage == first.current_usage, "a retried call was counted twice"
        print("   nothing was double counted")

        print("\n4. Use the feature up to its limit")
        remaining = first.remaining
        if remaining is None:
            print("   the feature is unlimited on this plan: skipping the limit demo")
        else:
            if remaining > 0:
                usage = await client.billing.track_usage(
                    company_id=company_id, feature_code=FEATURE, quantity=remaining
                )
                print(
                    f"   tracked {remaining}: usage={usage.current_usage} at_limit={usage.is_at_limit}"
                )
            try:
                await client.billing.track_usage(
                    company_id=company_id, feature_code=FEATURE, quantity=1
                )
            except PreconditionFailedError as error:
                print(
                    f"   one more is refused: {type(error).__name__} ({error.code}): {error.message}"
                )
            else:
                print("   one more was accepted: the limit did not hold")
                return 1
            show_access(await client.features.check(company_id=company_id, feature_code=FEATURE))

        print("\n5. Billing status")
        status = await client.billing.get_status(company_id)
        print(f"   billing profile: {status.has_billing_profile}")
        print(f"   active subscriptions: {len(status.active_subscriptions)}")
        print(f"   enabled features: {status.enabled_features_count}")
    print("\nDone.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
