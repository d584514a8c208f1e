"""URL converters for every AWS name a URL carries: the one place path parameters are checked.

A name that cannot be what it claims (wrong characters or length for AWS, a ``.`` or ``..``
path segment, control characters, NUL) does not match its URL pattern, so Django answers
404 before any view, cache or AWS client sees it. The character sets and lengths are AWS's
own (docs/AWS_FACTS.md and each service's API reference):

- SQS queue: 1-80 of ``[A-Za-z0-9_-]``, a FIFO queue's ending in ``.fifo`` (within the 80);
- EventBridge bus: 1-256 of ``[/.\\-_A-Za-z0-9]`` (partner buses have ``/``);
- EventBridge archive: 1-48 of ``[.\\-_A-Za-z0-9]``;
- CloudWatch alarm: 1-255 printable characters (UTF-8, no control characters; ``/`` allowed);
- EventBridge schema registry and schema: 1-385 printable characters, no ``/``;
- SQS message ID and EventBridge event ID: 1-128 of ``[A-Za-z0-9_-]``.
"""

from __future__ import annotations

import re

from django.urls import register_converter

# Path segments no AWS name of ours is made of: "." and ".." (traversal), "" ("//").
_DOT_SEGMENTS = {"", ".", ".."}


class _Name:
    """A ``str`` converter whose ``regex`` bounds the characters and length; ``to_python``
    refuses what a regex cannot say (dot segments, unprintable characters)."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        if any(segment in _DOT_SEGMENTS for segment in value.split("/")):
            raise ValueError("a dot segment")
        if not value.isprintable():
            raise ValueError("unprintable characters")
        return value

    def to_url(self, value: str) -> str:
        return str(value)


class QueueName(_Name):
    regex = r"(?:[A-Za-z0-9_-]{1,75}\.fifo|[A-Za-z0-9_-]{1,80})"


class BusName(_Name):
    regex = r"[/.\-_A-Za-z0-9]{1,256}"


class ArchiveName(_Name):
    regex = r"[.\-_A-Za-z0-9]{1,48}"


class AlarmName(_Name):
    # Any printable character, "/" included; to_python refuses the unprintable ones.
    regex = r"[^\x00-\x1f\x7f]{1,255}"


class SchemaName(_Name):
    regex = r"[^/\x00-\x1f\x7f]{1,385}"


class AwsId(_Name):
    """An SQS message ID or an EventBridge event ID."""

    regex = r"[A-Za-z0-9_-]{1,128}"


CONVERTERS = {
    "queue": QueueName,
    "bus": BusName,
    "archive": ArchiveName,
    "alarm": AlarmName,
    "schema": SchemaName,
    "awsid": AwsId,
}


def register() -> None:
    for name, converter in CONVERTERS.items():
        register_converter(converter, name)


def valid(kind: str, value: str) -> bool:
    """Whether ``value`` is a valid name of ``kind`` (``queue``, ``bus``...), for names that
    arrive other than in a URL path (a form, a query string)."""
    converter = CONVERTERS[kind]()
    if not re.fullmatch(converter.regex, value):
        return False
    try:
        converter.to_python(value)
    except ValueError:
        return False
    return True
