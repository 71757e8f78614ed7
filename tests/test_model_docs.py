"""Every field of every public pydantic model is documented, and the docs are its description.

The API reference (mkdocstrings) shows each field's docstring; the shared model configs set
``use_attribute_docstrings`` so the same text is also the field's ``description`` (in
``model_fields`` and the JSON schema). A field added without a docstring fails here.
"""

from __future__ import annotations

import copy
import inspect
import pickle

import pydantic
import pytest

import chatarmin_os


def public_models() -> dict[str, type[pydantic.BaseModel]]:
    """The pydantic models among ``chatarmin_os.__all__``, by name."""
    found: dict[str, type[pydantic.BaseModel]] = {}
    for name in chatarmin_os.__all__:
        value = getattr(chatarmin_os, name)
        if inspect.isclass(value) and issubclass(value, pydantic.BaseModel):
            found[name] = value
    return found


MODELS = public_models()


def test_the_walk_finds_the_result_and_input_models() -> None:
    # Not vacuous: the walk sees the models the reference pages document.
    assert {"FeatureAccess", "FeatureAccessDetail", "UsageResult", "Tier", "OnboardResult"} <= set(
        MODELS
    )
    assert {"ContactInput", "Hints"} <= set(MODELS)
    assert sum(len(model.model_fields) for model in MODELS.values()) >= 140


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_field_has_a_description(name: str) -> None:
    model = MODELS[name]
    bare = [
        field
        for field, info in model.model_fields.items()
        if info.description is None or not info.description.strip()
    ]
    assert bare == [], f"{name}: fields without a docstring: {bare}"


def test_a_description_is_the_docstring_under_the_field() -> None:
    limit = chatarmin_os.FeatureAccess.model_fields["quantity_limit"].description
    assert limit == "The most usage allowed; ``None`` means unlimited."
    amount = chatarmin_os.StripePrice.model_fields["unit_amount"].description
    assert amount is not None and "cents" in amount
    # A docstring over several lines is read dedented, as one text.
    source = chatarmin_os.FeatureAccessDetail.model_fields["source"].description
    assert source is not None and "\n    " not in source
    assert '"subscription"' in source and '"manual"' in source
    hint = chatarmin_os.Hints.model_fields["domain"].description
    assert hint is not None and "acme.com" in hint


def test_subclasses_keep_the_docs_of_inherited_fields() -> None:
    for sub, base, field in [
        (chatarmin_os.UpsertedContact, chatarmin_os.Contact, "email"),
        (chatarmin_os.Tier, chatarmin_os.TierSummary, "code"),
        (chatarmin_os.FeatureAccessDetail, chatarmin_os.FeatureAccessBase, "remaining"),
        (chatarmin_os.FeatureAccess, chatarmin_os.FeatureAccessBase, "can_use"),
    ]:
        assert sub.model_fields[field].description == base.model_fields[field].description
    assert chatarmin_os.UpsertedContact.model_fields["is_new"].description


def test_the_json_schema_carries_the_descriptions_under_wire_names() -> None:
    schema = chatarmin_os.UsageResult.model_json_schema()
    assert schema["properties"]["isAtLimit"]["description"] == (
        chatarmin_os.UsageResult.model_fields["is_at_limit"].description
    )


def test_the_docs_change_nothing_else() -> None:
    """Parsing, extras, equality, frozenness and pickling are what they were."""
    wire = {
        "featureCode": "ai_credit",
        "isEnabled": True,
        "canUse": True,
        "hasQuantity": True,
        "currentUsage": 3,
        "quantityLimit": None,
        "includedQuantity": 10,
        "remaining": None,
        "source": "server-added",
    }
    access = chatarmin_os.FeatureAccess.model_validate(wire)
    assert access.quantity_limit is None
    assert access.model_extra == {"source": "server-added"}
    assert access.to_dict(by_alias=True) == wire
    assert access == chatarmin_os.FeatureAccess.model_validate(wire)
    assert access != chatarmin_os.FeatureAccess.model_validate({**wire, "currentUsage": 4})
    with pytest.raises(pydantic.ValidationError):
        access.current_usage = 5  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(access)) == access
    assert copy.deepcopy(access) == access
    hints = chatarmin_os.Hints(domain="acme.com")
    assert hints.to_wire() == {"domain": "acme.com"}
    with pytest.raises(pydantic.ValidationError):
        chatarmin_os.Hints.model_validate({"domain": "acme.com", "unknown": 1})
