"""``contacts.*``: the people at a company, matched by e-mail case-insensitively."""

from __future__ import annotations

from typing import Any

from ..._wire import MAX_BULK_CONTACTS, dumps
from .._checks import ID, LABEL, F, Obj, array, boolean, email, json_object, text
from .._registry import mutation, query
from .._shapes import contact as shape_contact
from .._store import Store, new_id

__all__ = ["CONTACT_FIELDS", "bulk_upsert", "create", "has_primary", "list_", "upsert_contact"]

CONTACT_FIELDS = {
    "email": F(email, required=True),
    "name": LABEL,
    "role": LABEL,
    "isPrimary": F(boolean),
    "avatarUrl": F(text(max_length=4000)),
    "metadata": F(json_object),
}
"""``ContactInput``: the fields of one contact."""


_json = dumps


def upsert_contact(store: Store, company_id: str, item: dict[str, Any]) -> tuple[str, bool]:
    """Create or update the contact (company, lower(email)); returns ``(id, is_new)``.

    Only the given fields change on an update; ``isPrimary: true`` makes it the company's
    one primary contact.
    """
    email_address: str = item["email"]
    row = store.one(
        "SELECT id FROM contacts WHERE company_id = ? AND email_key = ?",
        (company_id, email_address.lower()),
    )
    if row is None:
        contact_id, is_new = new_id(), True
        store.execute(
            "INSERT INTO contacts (id, company_id, email, email_key, name, role, is_primary,"
            " avatar_url, metadata, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                contact_id,
                company_id,
                email_address,
                email_address.lower(),
                item.get("name"),
                item.get("role"),
                int(item.get("isPrimary", False)),
                item.get("avatarUrl"),
                _json(item.get("metadata", {})),
                store.stamp,
                store.stamp,
            ),
        )
    else:
        contact_id, is_new = row["id"], False
        changes: dict[str, Any] = {}
        for key, column in (("name", "name"), ("role", "role"), ("avatarUrl", "avatar_url")):
            if key in item:
                changes[column] = item[key]
        if "isPrimary" in item:
            changes["is_primary"] = int(item["isPrimary"])
        if "metadata" in item:
            changes["metadata"] = _json(item["metadata"])
        changes["updated_at"] = store.stamp
        assignments = ", ".join(f"{column} = ?" for column in changes)
        store.execute(
            f"UPDATE contacts SET {assignments} WHERE id = ?", (*changes.values(), contact_id)
        )
    if item.get("isPrimary") is True:
        store.execute(
            "UPDATE contacts SET is_primary = 0, updated_at = ?"
            " WHERE company_id = ? AND id != ? AND is_primary = 1",
            (store.stamp, company_id, contact_id),
        )
    return contact_id, is_new


def has_primary(store: Store, company_id: str) -> bool:
    """Whether the company has a primary contact."""
    query = "SELECT 1 FROM contacts WHERE company_id = ? AND is_primary = 1"
    return store.one(query, (company_id,)) is not None


def _contact(store: Store, contact_id: str, is_new: bool) -> dict[str, Any]:
    row = store.one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
    assert row is not None
    return shape_contact(row, is_new)


@mutation("contacts.create", input=Obj({"companyId": ID, **CONTACT_FIELDS}))
def create(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``contacts.create``: upsert one contact."""
    company = store.company(args["companyId"])
    item = {key: value for key, value in args.items() if key != "companyId"}
    contact_id, is_new = upsert_contact(store, company["id"], item)
    return _contact(store, contact_id, is_new)


@mutation(
    "contacts.bulkUpsert",
    input=Obj(
        {
            "companyId": ID,
            "contacts": F(
                array(Obj(CONTACT_FIELDS), min_items=1, max_items=MAX_BULK_CONTACTS),
                required=True,
            ),
        }
    ),
)
def bulk_upsert(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """``contacts.bulkUpsert``: each contact upserted in order; the final state returned."""
    company = store.company(args["companyId"])
    results = [upsert_contact(store, company["id"], item) for item in args["contacts"]]
    created = sum(1 for _, is_new in results if is_new)
    return {
        "created": created,
        "updated": len(results) - created,
        "contacts": [_contact(store, contact_id, is_new) for contact_id, is_new in results],
    }


@query("contacts.list", input=Obj({"companyId": ID, "primaryOnly": F(boolean)}))
def list_(store: Store, args: dict[str, Any]) -> list[dict[str, Any]]:
    """``contacts.list``: the primary first, then in creation order."""
    company = store.company(args["companyId"])
    where = " AND is_primary = 1" if args.get("primaryOnly", False) else ""
    return [
        shape_contact(row)
        for row in store.rows(
            f"SELECT * FROM contacts WHERE company_id = ?{where}"
            " ORDER BY is_primary DESC, created_at, seq",
            (company["id"],),
        )
    ]
