"""Schema registry pages: registries, schemas and versions, and "Why did this fail?"."""

from __future__ import annotations

import json
import re

from django import forms
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.environment import environment_of
from dashboard.http import HtmxHttpRequest
from dashboard.views.archive import fragment_status
from operations import masking, schema_check
from operations.aws import schemas
from operations.aws.errors import AwsError
from operations.cache import cached, describe_error

NAME_MAX = 385
# ASCII digits only: str.isdigit() and \d also accept other scripts' digits.
VERSION_RE = re.compile(r"[0-9]{1,10}")


@require_GET
def schema_list(request: HtmxHttpRequest) -> HttpResponse:
    """Every registry and its schemas."""

    def fetch() -> list[tuple[schemas.Registry, list[schemas.SchemaSummary]]]:
        return [(r, schemas.list_schemas(r.name)) for r in schemas.list_registries()]

    found = cached("schemas:registries", fetch)
    return render(request, "schemas/list.html", {"found": found, "form": CheckForm()})


def _pretty(content: str) -> str:
    try:
        return json.dumps(json.loads(content), indent=2, sort_keys=True, ensure_ascii=False)
    except (ValueError, RecursionError):
        return content


@require_GET
def schema_detail(request: HtmxHttpRequest, registry: str, name: str) -> HttpResponse:
    """One schema: its versions and the chosen (default latest) version's content."""
    version = request.GET.get("version", "")
    if (
        len(registry) > NAME_MAX
        or len(name) > NAME_MAX
        or (version and not VERSION_RE.fullmatch(version))
    ):
        raise Http404("No such schema.")
    try:
        versions = schemas.list_schema_versions(registry, name)
        schema = schemas.describe_schema(registry, name, version)
    except AwsError as exc:
        if exc.not_found:
            raise Http404(
                f"No schema {name} (version {version or 'latest'}) in {registry}."
            ) from None
        failed = {"registry": registry, "name": name, "error": describe_error(exc)}
        return render(request, "schemas/detail.html", failed, status=502)
    context: dict[str, object] = {
        "registry": registry,
        "name": name,
        "versions": versions,
        "schema": schema,
        "pretty": _pretty(schema.content),
        "form": CheckForm(
            initial={"registry": registry, "schema": name, "version": schema.version}
        ),
    }
    return render(request, "schemas/detail.html", context)


class CheckForm(forms.Form):
    body = forms.CharField(
        label="Event or DLQ message body (JSON)",
        widget=forms.Textarea,
        max_length=schema_check.MAX_INPUT_BYTES,
    )
    registry = forms.CharField(required=False, max_length=NAME_MAX)
    schema = forms.CharField(
        required=False, max_length=NAME_MAX, help_text="Leave empty to use <source>@<detail-type>."
    )
    version = forms.RegexField(
        regex=r"\A[0-9]*\Z",
        required=False,
        max_length=10,
        help_text="Empty for the latest version.",
    )


@require_http_methods(["GET", "POST"])
def schema_validate(request: HtmxHttpRequest) -> HttpResponse:
    """ "Why did this fail?": validate a body against its schema version, list the errors.

    POST because bodies are large; it changes nothing, so viewers may use it.
    """
    form = CheckForm(request.POST or None, initial=request.GET.dict())
    context: dict[str, object] = {"form": form}
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 400
        else:
            checked, status = _check(form.cleaned_data, request)
            context.update(checked)
    template = "schemas/_result.html" if request.htmx else "schemas/check.html"
    response = render(request, template, context, status=fragment_status(request, status))
    patch_vary_headers(response, ["HX-Request"])
    return response


def _check(data: dict[str, str], request: HtmxHttpRequest) -> tuple[dict[str, object], int]:
    """The result (or error, with its status) of one check, as this person may see it."""
    try:
        result = schema_check.check(
            data["body"], registry=data["registry"], schema=data["schema"], version=data["version"]
        )
    except schema_check.SchemaCheckError as exc:
        return {"error": str(exc)}, 400
    except AwsError as exc:
        return {"error": describe_error(exc)}, 502
    if not masking.must_mask(request.user, environment_of(request).name):
        return {"result": result}, 200
    # The problems quote the failing values: masked as the bodies they come from are.
    shown = {"result": schema_check.masked(result), "masked_input": masking.MASK in data["body"]}
    return shown, 200
