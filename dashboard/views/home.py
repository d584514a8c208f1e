"""``/``: the first environment's overview, or a picker once there are several."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from operations import access


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    visible = access.visible_environments(request.user)
    if not visible:
        raise PermissionDenied("You have no role in any environment.")
    if len(visible) == 1:
        return redirect("overview", visible[0].name)
    return render(request, "environments/picker.html", {"environments": visible})
