"""The access log: who read message bodies (viewed, exported, unmasked), beside the
operations list. Operators and admins see everyone's reads in their environments; everyone
else sees their own."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.http import HtmxHttpRequest
from dashboard.views.operations import environment_scope
from operations import access
from operations.read_audit import ReadAudit

FILTERS = ("environment", "user", "kind", "unmasked")


def sees_everyone(user: object, environment: str) -> bool:
    """Operators and admins (run operations or see unmasked bodies) see everyone's reads."""
    actions = access.actions_for(user, environment)
    return access.Action.REDRIVE in actions or access.Action.VIEW_UNMASKED in actions


@require_GET
def access_log(request: HtmxHttpRequest) -> HttpResponse:
    """Reads of message bodies, newest first, filterable by person, environment and kind."""
    chosen = {key: request.GET.get(key, "").strip()[:150] for key in FILTERS}
    environments = environment_scope(request, chosen)
    everyone = [name for name in environments if sees_everyone(request.user, name)]
    own = Q(username=request.user.get_username(), environment__in=environments)
    rows = ReadAudit.objects.filter(Q(environment__in=everyone) | own)
    if chosen["user"]:
        rows = rows.filter(username__icontains=chosen["user"])
    if chosen["kind"] in ReadAudit.Kind.values:
        rows = rows.filter(kind=chosen["kind"])
    else:
        chosen["kind"] = ""
    if chosen["unmasked"] == "1":
        rows = rows.filter(unmasked=True)
    else:
        chosen["unmasked"] = ""
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "chosen": chosen,
        "query": urlencode({k: v for k, v in chosen.items() if v}),
        "kinds": ReadAudit.Kind.choices,
        "environments": access.visible_environments(request.user),
        "only_own": not everyone,
    }
    return render(request, "operations/access_log.html", context)
