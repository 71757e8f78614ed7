"""The public input ``TypedDict``s say exactly what the methods take.

Each TypedDict mirrors a TypeScript input type and is documented as "the keyword arguments of
the matching method", so a payload typed with it can be passed as ``**payload``. These tests
hold them to that: the same argument names, the same required-ness, in both clients. The
annotations themselves are left to mypy (they are widened independently of the names).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import chatarmin_os._inputs as inputs_module
from chatarmin_os import AsyncChatarminOS, ChatarminOS
from chatarmin_os._inputs import (
    ApplyTierInput,
    ChatarminOSConfig,
    ClaimCheckoutInput,
    ContactInput,
    ContactInputDict,
    CreateCompanyInput,
    FeatureCheckInput,
    FeatureSetAccessInput,
    Hints,
    HintsDict,
    LinkSubscriptionInput,
    OnboardInput,
    SmartLinkInput,
    TrackUsageInput,
)

Client = type[AsyncChatarminOS] | type[ChatarminOS]


def _method(client: Client, dotted: str) -> Callable[..., Any]:
    """``"companies.create"`` -> the unbound method of the resource class."""
    if "." not in dotted:
        method: Callable[..., Any] = getattr(client, dotted)
        return method
    namespace, name = dotted.split(".")
    instance = client.__new__(client)
    method = getattr(type(getattr(instance, namespace)), name)
    return method


# TypedDict -> (method, positional arguments the TypedDict leaves out)
# Every method's per-call options (``RequestOptions``) are not part of its input.
OPTIONS = ("extra_headers", "extra_query", "timeout")
METHODS: dict[type, tuple[str, tuple[str, ...]]] = {
    CreateCompanyInput: ("companies.create", OPTIONS),
    SmartLinkInput: ("companies.smart_link", OPTIONS),
    FeatureCheckInput: ("features.check", OPTIONS),
    FeatureSetAccessInput: ("features.set_access", OPTIONS),
    TrackUsageInput: ("billing.track_usage", OPTIONS),
    ClaimCheckoutInput: ("billing.claim_checkout", OPTIONS),
    LinkSubscriptionInput: ("billing.link_subscription", OPTIONS),
    OnboardInput: ("onboard", OPTIONS),
    ApplyTierInput: ("tiers.apply", ("tier_code", *OPTIONS)),
}


def _arguments(method: Callable[..., Any], skip: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(required, optional) argument names of a method, ``self`` and ``skip`` left out."""
    required: set[str] = set()
    optional: set[str] = set()
    for parameter in inspect.signature(method).parameters.values():
        if parameter.name == "self" or parameter.name in skip:
            continue
        assert parameter.kind is not inspect.Parameter.VAR_KEYWORD, method
        (required if parameter.default is inspect.Parameter.empty else optional).add(parameter.name)
    return required, optional


def test_every_typed_dict_is_checked() -> None:
    typed_dicts = {
        name
        for name in inputs_module.__all__
        if isinstance(getattr(inputs_module, name), type)
        and hasattr(getattr(inputs_module, name), "__required_keys__")
    }
    checked = {cls.__name__ for cls in METHODS} | {
        "ChatarminOSConfig",
        "ContactInputDict",
        "HintsDict",
    }
    assert typed_dicts == checked


@pytest.mark.parametrize("client", [AsyncChatarminOS, ChatarminOS], ids=["async", "sync"])
@pytest.mark.parametrize("typed_dict", list(METHODS), ids=lambda cls: cls.__name__)
def test_typed_dict_matches_the_method(client: Client, typed_dict: Any) -> None:
    name, skip = METHODS[typed_dict]
    required, optional = _arguments(_method(client, name), skip)
    assert set(typed_dict.__required_keys__) == required, name
    assert set(typed_dict.__optional_keys__) == optional, name


@pytest.mark.parametrize("client", [AsyncChatarminOS, ChatarminOS], ids=["async", "sync"])
def test_config_is_a_subset_of_the_constructor(client: Client) -> None:
    required, optional = _arguments(client.__init__, ())
    assert required == set()
    assert ChatarminOSConfig.__required_keys__ == frozenset()
    # The TypeScript config has no http_client / sleep: those are Python-only arguments.
    assert set(ChatarminOSConfig.__optional_keys__) == optional - {"http_client", "sleep"}


@pytest.mark.parametrize(
    ("typed_dict", "model"), [(ContactInputDict, ContactInput), (HintsDict, Hints)]
)
def test_nested_dicts_match_their_models(typed_dict: Any, model: Any) -> None:
    required = {name for name, field in model.model_fields.items() if field.is_required()}
    assert set(typed_dict.__required_keys__) == required
    assert set(typed_dict.__optional_keys__) == set(model.model_fields) - required
