"""Views of the Django integration tests: every way to gate, sync and async."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from chatarmin_os.django import Refusal, feature_access, require_feature


def _answer(request: HttpRequest, feature: str) -> HttpResponse:
    access = feature_access(request, feature)
    return JsonResponse({"remaining": access.remaining, "enabled": access.is_enabled})


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
def sync_ai(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
async def async_ai(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


@require_feature("sso", external_org_id="X-Org-Id")
def sync_sso(request: HttpRequest) -> HttpResponse:
    return _answer(request, "sso")


@require_feature("sso", external_org_id="X-Org-Id")
async def async_sso(request: HttpRequest) -> HttpResponse:
    return _answer(request, "sso")


@require_feature("ai_credit", external_org_id=lambda request: request.GET.get("org"), quantity=5)
def sync_five(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


async def _org_from_query(request: HttpRequest) -> str | None:
    return request.GET.get("org")


@require_feature("ai_credit", external_org_id=_org_from_query, quantity=5)
async def async_five(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
def sync_fails(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"error": "the view failed"}, status=500)


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
async def async_fails(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"error": "the view failed"}, status=500)


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
def sync_breaks(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view broke")


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True)
async def async_breaks(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the view broke")


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True, meter="before")
def sync_before(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


@require_feature("ai_credit", external_org_id="X-Org-Id", track=True, meter="before")
async def async_before(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"error": "failed after metering"}, status=500)


def _teapot(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    return JsonResponse({"why": refusal.reason, "org": refusal.external_org_id}, status=418)


@require_feature(
    "ai_credit",
    external_org_id="X-Org-Id",
    statuses={"feature_limit_reached": 429},
    on_refusal=None,
)
def sync_429(request: HttpRequest) -> HttpResponse:
    return _answer(request, "ai_credit")


@require_feature("sso", external_org_id="X-Org-Id", on_refusal=_teapot)
def sync_teapot(request: HttpRequest) -> HttpResponse:
    return _answer(request, "sso")


@require_feature("ai_credit", external_org_id="X-Org-Id")
@require_feature("team_seats", external_org_id="X-Org-Id")
def sync_two(request: HttpRequest) -> HttpResponse:
    return JsonResponse(
        {
            "ai_credit": feature_access(request, "ai_credit").remaining,
            "team_seats": feature_access(request, "team_seats").remaining,
        }
    )


@require_feature("no_such_feature", external_org_id="X-Org-Id")
def sync_typo(request: HttpRequest) -> HttpResponse:
    return _answer(request, "no_such_feature")


urlpatterns = [
    path("sync/ai/", sync_ai),
    path("async/ai/", async_ai),
    path("sync/sso/", sync_sso),
    path("async/sso/", async_sso),
    path("sync/five/", sync_five),
    path("async/five/", async_five),
    path("sync/fails/", sync_fails),
    path("async/fails/", async_fails),
    path("sync/breaks/", sync_breaks),
    path("async/breaks/", async_breaks),
    path("sync/before/", sync_before),
    path("async/before/", async_before),
    path("sync/429/", sync_429),
    path("sync/teapot/", sync_teapot),
    path("sync/two/", sync_two),
    path("sync/typo/", sync_typo),
]
