"""Forms of the DLQ operation views (validated on the server; never trusted ARNs)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django import forms

from operations import dlq, dlq_actions, redrive
from operations.redrive_params import MAX_CONCURRENCY, MAX_WORKERS
from operations.redrive_rate import MAX_RATE, RateError, parse_rate
from operations.triage import groups, table

REASON_HELP = "Why: it is recorded with the operation."
FILTER_FIELDS = (
    "event_type",
    "correlation_id",
    "attribute_name",
    "attribute_value",
    "contains",
    "sent_after",
    "sent_before",
    "message_ids",
)
# Message ids are what SQS returns: UUIDs in practice; this bounds the form and the URL.
MAX_MESSAGE_IDS = 200
MESSAGE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class FilterForm(forms.Form):
    """Which messages a redrive moves (GET: the preview)."""

    event_type = forms.CharField(required=False, max_length=128)
    correlation_id = forms.CharField(required=False, max_length=256, label="Correlation ID")
    attribute_name = forms.CharField(required=False, max_length=256, label="Message attribute")
    attribute_value = forms.CharField(required=False, max_length=1024, label="Attribute value")
    contains = forms.CharField(required=False, max_length=1024, label="Body contains")
    sent_after = forms.DateTimeField(required=False, label="Sent after (UTC)")
    sent_before = forms.DateTimeField(required=False, label="Sent before (UTC)")
    message_ids = forms.CharField(
        required=False,
        max_length=MAX_MESSAGE_IDS * 101,
        label="Only these message IDs",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Space- or line-separated; empty means any message.",
    )

    def clean_message_ids(self) -> str:
        ids = str(self.cleaned_data.get("message_ids") or "").split()
        if len(ids) > MAX_MESSAGE_IDS:
            raise forms.ValidationError(f"At most {MAX_MESSAGE_IDS} message IDs.")
        for value in ids:
            if len(value) > 100 or not set(value) <= MESSAGE_ID_CHARS:
                raise forms.ValidationError("Message IDs are letters, digits and dashes.")
        return " ".join(dict.fromkeys(ids))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("attribute_value") and not data.get("attribute_name"):
            self.add_error("attribute_name", "Name the attribute whose value must match.")
        after, before = data.get("sent_after"), data.get("sent_before")
        if after and before and after >= before:
            self.add_error("sent_before", "Must be later than “sent after”.")
        return data

    def filters(self) -> dlq.Filters:
        data = self.cleaned_data
        return dlq.Filters(
            event_type=data.get("event_type") or "",
            correlation_id=data.get("correlation_id") or "",
            attribute_name=data.get("attribute_name") or "",
            attribute_value=data.get("attribute_value") or "",
            contains=data.get("contains") or "",
            sent_after=data.get("sent_after"),
            sent_before=data.get("sent_before"),
            message_ids=frozenset((data.get("message_ids") or "").split()),
        )


class StartForm(FilterForm):
    """The confirm step: filters plus limits, destination and the required reason."""

    max_messages = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)
    rate = forms.FloatField(
        required=False, min_value=0.1, max_value=500, label="Rate limit (messages/s)"
    )
    concurrency = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_CONCURRENCY,
        label="Pipelines at once",
        help_text="Receive/send/delete pipelines run in parallel (empty: the default). "
        "A FIFO DLQ runs them across message groups, each group in order.",
    )
    workers = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WORKERS,
        initial=1,
        label="Workers",
        help_text="Split the redrive across this many Celery workers, for very deep DLQs "
        "(standard queues only; the rate and the limit are shared between them).",
    )
    destination_arn = forms.ChoiceField(
        required=False,
        label="Source queue for messages without DeadLetterQueueSourceArn",
    )
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text=REASON_HELP
    )

    def clean_workers(self) -> int:
        workers = int(self.cleaned_data.get("workers") or 1)
        message_ids = (self.data.get("message_ids") or "").split()
        try:
            redrive.check_workers(workers, dlq_url=".fifo" if self.fifo else "")
        except redrive.WorkersError as exc:
            why = str(exc)
            raise forms.ValidationError(f"{why[:1].upper()}{why[1:]}.") from exc
        if workers > 1 and message_ids:
            raise forms.ValidationError("A redrive of named messages runs on one worker.")
        return workers

    def start_request(
        self, dlq_url: str, dlq_arn: str, user: Any, user_name: str, *, masked: bool
    ) -> redrive.StartRequest:
        """What the valid form asks for, as the redrive service takes it (pages and API).
        ``masked``: the person sees bodies masked, so their filters match the masked bodies
        (the worker applies it)."""
        data = self.cleaned_data
        params = redrive.RedriveParams(
            filters=dataclasses.replace(self.filters(), masked=masked),
            max_messages=data["max_messages"],
            rate=data["rate"],
            concurrency=data["concurrency"],
            workers=data.get("workers") or 1,
            destination_arn=data["destination_arn"] or "",
            dlq_arn=dlq_arn,
        )
        return redrive.StartRequest(
            dlq_url, params, data["reason"], user, user_name, native=redrive.use_native(params)
        )

    def __init__(
        self, *args: Any, sources: list[tuple[str, str]], fifo: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fifo = fifo
        field = self.fields["destination_arn"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *sources] if len(sources) != 1 else sources
        field.required = len(sources) > 1
        if len(sources) == 1:
            field.initial = sources[0][0]


class DeleteForm(forms.Form):
    message_ids = forms.MultipleChoiceField(required=True, label="Messages")
    reason = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )
    confirm = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ids = self.data.getlist("message_ids") if hasattr(self.data, "getlist") else []
        field = self.fields["message_ids"]
        assert isinstance(field, forms.MultipleChoiceField)
        # Any id is acceptable: it is only compared with ids received from the queue.
        field.choices = [(i, i) for i in ids[: dlq_actions.MAX_DELETE]]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("confirm") and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why these messages are deleted.")
        return data


class EditForm(forms.Form):
    body = forms.CharField(
        max_length=256 * 1024, strip=False, widget=forms.Textarea(attrs={"rows": 20})
    )
    reason = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=REASON_HELP,
    )
    confirm = forms.BooleanField(required=False)

    def clean_body(self) -> str:
        body = str(self.cleaned_data["body"])
        try:
            _, pretty = dlq.normalise_json(body)
        except RecursionError as exc:
            raise forms.ValidationError(
                "The JSON is nested too deeply to check; flatten it and try again."
            ) from exc
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        try:
            pretty.encode("utf-8")
        except UnicodeEncodeError as exc:
            # "\ud800" alone parses to a lone surrogate, which no SQS message can carry.
            raise forms.ValidationError(
                "The JSON has an unpaired surrogate escape (such as \\ud800); remove it."
            ) from exc
        return body

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("confirm") and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why this message is edited and re-sent.")
        return data


class CancelForm(forms.Form):
    """Why an operation is cancelled: recorded with who asked and when."""

    reason = forms.CharField(
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "why it must stop"}),
        help_text="Why: it is recorded with the cancel.",
        error_messages={"required": "Say why it must stop: the reason is recorded."},
    )


class RateForm(forms.Form):
    """A new rate limit for a running redrive: messages per second, or empty for none."""

    rate = forms.CharField(
        required=False,
        max_length=20,
        label="New rate limit (messages/s)",
        help_text=f"Up to {MAX_RATE:g}; empty lifts the limit. Applied within a second.",
    )

    def clean_rate(self) -> float | None:
        try:
            return parse_rate(self.cleaned_data.get("rate"))
        except RateError as exc:
            raise forms.ValidationError(str(exc)) from exc


class TableForm(forms.Form):
    """The DLQ page's table: filters, sort and page (GET)."""

    SORT_CHOICES = [
        (f"{sign}{name}", f"{name} {'descending' if sign else 'ascending'}")
        for name in table.SORTS
        for sign in ("", "-")
    ]

    group = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False, label="Group")
    event_type = forms.CharField(required=False, max_length=128, label="Event type")
    correlation_id = forms.CharField(required=False, max_length=256, label="Correlation ID")
    q = forms.CharField(required=False, max_length=200, label="Text (masked excerpt, error)")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)
    page = forms.IntegerField(required=False, min_value=1, max_value=1_000_000)

    def filters(self) -> table.TableFilters:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return table.TableFilters(
            group=data.get("group") or "",
            event_type=data.get("event_type") or "",
            correlation_id=data.get("correlation_id") or "",
            text=data.get("q") or "",
            sort=data.get("sort") or table.DEFAULT_SORT,
        )


class GroupStateForm(forms.Form):
    """Acknowledge, resolve, ignore or reopen a failure group (POST), with a note."""

    action = forms.ChoiceField(choices=[(a, a) for a in groups.TRANSITIONS])
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
