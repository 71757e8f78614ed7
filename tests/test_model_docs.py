"""Every field of every public pydantic model is documented, and the docs are its description.

The API reference (mkdocstrings) shows each field's docstring; the shared model configs set
``use_attribute_docstrings`` so the same text is also the field's ``description`` (in
``model_fields`` and the JSON schema). A field added without a docstring fails here.

The same holds for every key of every public ``TypedDict``: the reference lists only the keys
with a docstring in the class body itself (not those of a private base), so each key needs one
there (read from the source with ``ast``, as the reference reads it).
"""

from __future__ import annotations

import ast
import copy
import inspect
import pickle
import textwrap
from pathlib import Path

import pydantic
import pytest
from typing_extensions import is_typeddict

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


def public_typed_dicts() -> dict[str, type]:
    """The ``TypedDict`` classes among ``chatarmin_os.__all__``, by name."""
    return {
        name: getattr(chatarmin_os, name)
        for name in chatarmin_os.__all__
        if is_typeddict(getattr(chatarmin_os, name))
    }


TYPED_DICTS = public_typed_dicts()

# Public TypedDicts whose keys are still described only in the class docstring (their
# module is not part of this check yet); each must still lack a key docstring (see below).
KEYS_IN_CLASS_DOCSTRING = {"RequestOptions"}


def key_docstrings(source: str, name: str) -> dict[str, str | None]:
    """Each key annotated in the body of the top-level class ``name`` -> the string literal
    on the line after it (dedented), or ``None`` when there is none."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            docs: dict[str, str | None] = {}
            body = node.body
            for index, statement in enumerate(body):
                if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                    after = body[index + 1] if index + 1 < len(body) else None
                    docs[statement.target.id] = (
                        inspect.cleandoc(after.value.value)
                        if isinstance(after, ast.Expr)
                        and isinstance(after.value, ast.Constant)
                        and isinstance(after.value.value, str)
                        else None
                    )
            return docs
    raise AssertionError(f"no class {name} at the top level")


def typed_dict_key_docs(typed_dict: type) -> dict[str, str | None]:
    """:func:`key_docstrings` of a TypedDict, read from its module's source file."""
    path = inspect.getsourcefile(typed_dict)
    assert path is not None, typed_dict
    return key_docstrings(Path(path).read_text(encoding="utf-8"), typed_dict.__name__)


def undocumented_keys(typed_dict: type) -> list[str]:
    """The keys (inherited ones too) without a docstring in the TypedDict's own body."""
    docs = typed_dict_key_docs(typed_dict)
    return sorted(key for key in typed_dict.__annotations__ if not (docs.get(key) or "").strip())


def test_the_walk_finds_the_input_typed_dicts() -> None:
    # Not vacuous: the walk sees the TypedDicts of the input types page, with all their keys.
    assert {
        "ChatarminOSConfig",
        "CreateCompanyInput",
        "FeatureCheckInput",
        "TrackUsageInput",
        "OnboardInput",
        "HintsDict",
        "ContactInputDict",
    } <= set(TYPED_DICTS)
    assert set(TYPED_DICTS) >= KEYS_IN_CLASS_DOCSTRING
    checked = set(TYPED_DICTS) - KEYS_IN_CLASS_DOCSTRING
    assert len(checked) >= 12
    assert sum(len(TYPED_DICTS[name].__annotations__) for name in checked) >= 66


@pytest.mark.parametrize("name", sorted(set(TYPED_DICTS) - KEYS_IN_CLASS_DOCSTRING))
def test_every_typed_dict_key_has_a_docstring(name: str) -> None:
    bare = undocumented_keys(TYPED_DICTS[name])
    assert bare == [], f"{name}: keys without a docstring in the class body: {bare}"


@pytest.mark.parametrize("name", sorted(KEYS_IN_CLASS_DOCSTRING))
def test_an_exempt_typed_dict_still_needs_its_exemption(name: str) -> None:
    assert undocumented_keys(TYPED_DICTS[name]), (
        f"{name}'s keys are all documented now: drop it from KEYS_IN_CLASS_DOCSTRING"
    )


def test_a_key_docstring_is_the_string_under_the_key() -> None:
    created = typed_dict_key_docs(chatarmin_os.CreateCompanyInput)["created_at"]
    assert created is not None and "ISO-8601" in created and "\n    " not in created
    limit = typed_dict_key_docs(chatarmin_os.FeatureSetAccessInput)["quantity_limit"]
    assert limit is not None and "unlimited" in limit
    # A required key has its docstring in the public class too (no private base).
    assert typed_dict_key_docs(chatarmin_os.CreateCompanyInput)["name"]
    assert chatarmin_os.CreateCompanyInput.__required_keys__ == frozenset({"name"})


def test_a_key_without_a_docstring_is_found() -> None:
    source = textwrap.dedent(
        '''
        class _Base(TypedDict):
            inherited: str
            """Documented, but in a private base."""

        class Payload(_Base, total=False):
            """A payload."""

            documented: int
            """The count."""
            bare: str
            other = 1
            last: bool
        '''
    )
    assert key_docstrings(source, "Payload") == {
        "documented": "The count.",
        "bare": None,
        "last": None,
    }
    with pytest.raises(AssertionError):
        key_docstrings(source, "Missing")
