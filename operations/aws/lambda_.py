"""Lambda adapter: event source mappings (which function consumes which queue)."""

from __future__ import annotations

from dataclasses import dataclass

from operations.aws.client import client
from operations.aws.errors import translate


@dataclass(frozen=True)
class EventSourceMapping:
    uuid: str
    function_arn: str
    event_source_arn: str
    state: str
    batch_size: int

    @property
    def function_name(self) -> str:
        # arn:aws:lambda:region:account:function:NAME[:qualifier]
        parts = self.function_arn.split(":")
        return parts[6] if len(parts) > 6 else self.function_arn


def list_event_source_mappings() -> list[EventSourceMapping]:
    """Every event source mapping in the account and Region, all pages.

    One unfiltered listing is cheaper than one filtered call per queue.
    """
    # https://docs.aws.amazon.com/lambda/latest/api/API_ListEventSourceMappings.html
    mappings: list[EventSourceMapping] = []
    try:
        paginator = client("lambda").get_paginator("list_event_source_mappings")
        for page in paginator.paginate(PaginationConfig={"PageSize": 100}):
            for raw in page.get("EventSourceMappings", []):
                mappings.append(
                    EventSourceMapping(
                        uuid=raw.get("UUID", ""),
                        function_arn=raw.get("FunctionArn", ""),
                        event_source_arn=raw.get("EventSourceArn", ""),
                        state=raw.get("State", ""),
                        batch_size=int(raw.get("BatchSize", 0) or 0),
                    )
                )
    except Exception as exc:
        raise translate(exc, "ListEventSourceMappings") from exc
    return mappings


def function_log_group(function_name: str) -> str:
    """Where the function logs: its ``LoggingConfig.LogGroup`` if set, else Lambda's default
    ``/aws/lambda/<function name>``."""
    # https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html
    try:
        raw = client("lambda").get_function_configuration(FunctionName=function_name)
    except Exception as exc:
        raise translate(exc, "GetFunctionConfiguration") from exc
    logging_config = raw.get("LoggingConfig") or {}
    return str(logging_config.get("LogGroup") or f"/aws/lambda/{function_name}")
