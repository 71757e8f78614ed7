"""``chatarmin-os features|billing|tiers|usage``: look up a customer's entitlements from a shell.

Each command is one call of the sync client :class:`~chatarmin_os.ChatarminOS` (key from
``OS_API_KEY``, endpoint from ``--base-url`` or ``CHATARMIN_OS_BASE_URL``), printed as an
aligned table, or with ``--json`` as the result model's JSON dump. Failures and exit codes:
see :mod:`chatarmin_os._cli_common`.

* ``features check (--org ORG | --company ID) FEATURE``
* ``features list (--org ORG | --company ID)``
* ``billing status (--company ID | --org ORG)``
* ``tiers list`` / ``tiers get CODE``
* ``usage track (--org ORG | --company ID) FEATURE [--quantity N] [--idempotency-key K]``
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from ._cli_common import CLIENT_EPILOG, add_client_flags, fields, run_with_client, table
from ._exceptions import NotFoundError

if TYPE_CHECKING:
    from ._models import (
        BillingStatus,
        FeatureAccess,
        FeatureAccessDetail,
        OrgFeatureAccess,
        Tier,
        TierSummary,
        UsageResult,
    )
    from ._sync.client import ChatarminOS

    Subparsers = argparse._SubParsersAction[Any]

__all__ = ["add_commands"]


def _command(
    group: Subparsers,
    name: str,
    help: str,
    work: Callable[[argparse.Namespace, ChatarminOS], Any],
    render: Callable[[Any], str],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=CLIENT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_client_flags(parser)

    def run(args: argparse.Namespace) -> int:
        return run_with_client(args, lambda client: work(args, client), render)

    parser.set_defaults(run=run)
    return parser


def _whose(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--org", metavar="ORG", help="your product's org id (external_org_id)")
    who.add_argument("--company", metavar="ID", help="the ChatarminOS company id")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# -- features -------------------------------------------------------------------------------


def _check(args: argparse.Namespace, client: ChatarminOS) -> FeatureAccess:
    if args.org is not None:
        return client.features.check_by_external_org_id(args.org, args.feature)
    return client.features.check(company_id=args.company, feature_code=args.feature)


def _show_check(access: FeatureAccess) -> str:
    return fields(
        [
            ("feature", access.feature_code),
            ("enabled", access.is_enabled),
            ("can use", access.can_use),
            ("metered", access.has_quantity),
            ("usage", access.current_usage),
            ("limit", "unlimited" if access.quantity_limit is None else access.quantity_limit),
            ("included", access.included_quantity),
            ("remaining", "unlimited" if access.remaining is None else access.remaining),
        ]
    )


def _list(
    args: argparse.Namespace, client: ChatarminOS
) -> OrgFeatureAccess | list[FeatureAccessDetail]:
    if args.org is not None:
        return client.features.get_access_by_external_org_id(args.org)
    return client.features.list_access(args.company)


def _show_list(result: OrgFeatureAccess | list[FeatureAccessDetail]) -> str:
    head = ""
    if not isinstance(result, list):
        head = f"company {result.company_id}\n\n"
        result = result.features
    rows = [
        (
            f.feature_code,
            f.feature_name,
            f.is_enabled,
            f.can_use,
            f.current_usage if f.has_quantity else None,
            f.quantity_limit if f.has_quantity else None,
            f.included_quantity,
            f.remaining if f.has_quantity else None,
            f.source,
            f.valid_until,
        )
        for f in result
    ]
    headers = ("feature", "name", "enabled", "can use", "usage", "limit", "included")
    return head + table((*headers, "remaining", "source", "valid until"), rows)


# -- billing, tiers, usage --------------------------------------------------------------------


def _company_of(args: argparse.Namespace, client: ChatarminOS) -> str:
    if args.company is not None:
        return str(args.company)
    company = client.companies.get_by_product_link(external_org_id=args.org)
    if company is None:
        raise NotFoundError(
            f"No company is linked to external_org_id {args.org!r}",
            response=httpx.Response(404),
            path="companies.getByProductLink",
            code="NOT_FOUND",
        )
    return company.id


def _status(args: argparse.Namespace, client: ChatarminOS) -> BillingStatus:
    return client.billing.get_status(_company_of(args, client))


def _show_status(status: BillingStatus) -> str:
    text = fields(
        [
            ("company", status.company_id),
            ("billing profile", status.has_billing_profile),
            ("enabled features", status.enabled_features_count),
            ("subscriptions", len(status.active_subscriptions) or "none"),
        ]
    )
    if status.active_subscriptions:
        rows = [
            (
                s.id,
                s.status,
                s.tier.code if s.tier else None,
                s.display_name,
                s.stripe_subscription_id,
                s.current_period_end,
            )
            for s in status.active_subscriptions
        ]
        headers = ("subscription", "status", "tier", "name", "stripe id", "period end")
        text += "\n\n" + table(headers, rows)
    return text


def _show_tiers(tiers: list[TierSummary]) -> str:
    return table(("code", "name", "description"), [(t.code, t.name, t.description) for t in tiers])


def _show_tier(tier: Tier) -> str:
    fee = None
    if tier.base_fee is not None:
        price = tier.base_fee.stripe
        amount = f"{price.unit_amount / 100:.2f} {price.currency.upper()} / {price.interval}"
        fee = f"{amount} ({price.price_id})"
    head = fields(
        [
            ("code", tier.code),
            ("name", tier.name),
            ("description", tier.description),
            ("base fee", fee),
            ("stripe prices", ", ".join(tier.stripe_price_ids) or None),
        ]
    )
    rows = [(f.code, f.name, f.config_values) for f in tier.features]
    return head + "\n\n" + table(("feature", "name", "config"), rows)


def _track(args: argparse.Namespace, client: ChatarminOS) -> UsageResult:
    return client.billing.track_usage(
        feature_code=args.feature,
        quantity=args.quantity,
        company_id=args.company,
        external_org_id=args.org,
        idempotency_key=args.idempotency_key,
    )


def _show_usage(usage: UsageResult) -> str:
    return fields(
        [
            ("feature", usage.feature_code),
            ("usage", usage.current_usage),
            ("limit", "unlimited" if usage.quantity_limit is None else usage.quantity_limit),
            ("included", usage.included_quantity),
            ("remaining", "unlimited" if usage.remaining is None else usage.remaining),
            ("billable", usage.billable_quantity),
            ("at limit", usage.is_at_limit),
            ("duplicate", usage.duplicate),
        ]
    )


def add_commands(commands: Subparsers) -> None:
    """Add ``features``, ``billing``, ``tiers`` and ``usage`` to a ``chatarmin-os`` parser."""
    features = commands.add_parser(
        "features", help="a customer's feature entitlements", description="Feature entitlements."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    check = _command(
        features, "check", "whether a customer may use a feature now", _check, _show_check
    )
    _whose(check)
    check.add_argument("feature", metavar="FEATURE", help="a feature code, e.g. ai_credit")
    _whose(_command(features, "list", "every feature and a customer's access", _list, _show_list))

    billing = commands.add_parser(
        "billing", help="a customer's billing", description="Billing."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    _whose(_command(billing, "status", "a customer's billing overview", _status, _show_status))

    tiers = commands.add_parser(
        "tiers", help="the tier catalog", description="Subscription tiers."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(tiers, "list", "every tier", lambda _, client: client.tiers.list(), _show_tiers)
    get = _command(
        tiers,
        "get",
        "a tier with its base fee, features and prices",
        lambda args, client: client.tiers.get(args.code),
        _show_tier,
    )
    get.add_argument("code", metavar="CODE", help="a tier code, e.g. pro")

    usage = commands.add_parser(
        "usage", help="metered usage", description="Metered usage."
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    track = _command(usage, "track", "count usage of a metered feature", _track, _show_usage)
    _whose(track)
    track.add_argument("feature", metavar="FEATURE", help="a metered feature code")
    track.add_argument(
        "--quantity", type=_positive, default=1, metavar="N", help="how much (default 1)"
    )
    track.add_argument(
        "--idempotency-key",
        metavar="K",
        help="counted once however often it is sent (default: a fresh key)",
    )
