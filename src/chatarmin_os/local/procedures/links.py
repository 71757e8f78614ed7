"""``links.*``: the product links between your org ids and companies (one set per API key)."""

from __future__ import annotations

from typing import Any

from .._checks import ID, LABEL, OPTIONAL_ID, F, Obj, boolean
from .._errors import ProcedureError
from .._registry import mutation
from .._shapes import link as shape_link
from .._store import Store, new_id

__all__ = ["create", "create_link", "reset"]


def create_link(
    store: Store,
    company_id: str,
    external_org_id: str,
    label: str | None,
    external_user_id: str | None = None,
) -> dict[str, Any]:
    """Link ``external_org_id`` (this product) to a company; ``CONFLICT`` when it is linked."""
    if store.linked_company(external_org_id) is not None:
        raise ProcedureError(
            "CONFLICT", f'externalOrgId "{external_org_id}" is already linked to a company'
        )
    link_id = new_id()
    store.execute(
        "INSERT INTO product_links (id, product_id, company_id, external_org_id, label,"
        " external_user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (link_id, store.product, company_id, external_org_id, label, external_user_id, store.stamp),
    )
    row = store.one("SELECT * FROM product_links WHERE id = ?", (link_id,))
    assert row is not None
    return shape_link(row)


@mutation(
    "links.create",
    input=Obj(
        {"companyId": ID, "externalOrgId": ID, "label": LABEL, "externalUserId": OPTIONAL_ID}
    ),
)
def create(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``links.create``: link an org id to an existing company."""
    company = store.company(args["companyId"])
    return create_link(
        store, company["id"], args["externalOrgId"], args.get("label"), args.get("externalUserId")
    )


@mutation(
    "links.reset",
    input=Obj({"deleteContacts": F(boolean), "resetMrr": F(boolean)}, optional=True),
)
def reset(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``links.reset``: this product's links; optionally their companies' contacts and MRR."""
    linked = "SELECT company_id FROM product_links WHERE product_id = ?"
    contacts_deleted = 0
    if args.get("deleteContacts", False):
        cursor = store.execute(
            f"DELETE FROM contacts WHERE company_id IN ({linked})", (store.product,)
        )
        contacts_deleted = cursor.rowcount
    reset_mrr = bool(args.get("resetMrr", False))
    if reset_mrr:
        store.execute(
            f"UPDATE companies SET mrr_cents = 0, updated_at = ? WHERE id IN ({linked})",
            (store.stamp, store.product),
        )
    cursor = store.execute("DELETE FROM product_links WHERE product_id = ?", (store.product,))
    return {
        "linksDeleted": cursor.rowcount,
        "contactsDeleted": contacts_deleted,
        "mrrReset": reset_mrr,
    }
