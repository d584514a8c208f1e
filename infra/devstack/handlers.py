"""The Lambda code's handlers, built for the devstack (one process, explicit configuration).

Imports of ``infra.functions`` are lazy: the provisioner and the runner do not need them, and
the handlers read ``POWERTOOLS_*`` settings when they are built.
"""

from __future__ import annotations

from typing import Any

from infra.devstack.clients import Clients
from infra.devstack.function_logs import FunctionLogs
from infra.devstack.provision import Provisioned


def publisher_handler(clients: Clients, built: Provisioned) -> Any:
    """The outbox publisher, with the devstack's clients."""
    from infra.functions.publisher import build_publisher

    return build_publisher(
        built.bus_name,
        built.orders_table,
        events_client=clients("events"),
        dynamodb_client=clients("dynamodb"),
    )


def consumer_handler(name: str, built: Provisioned, logs: FunctionLogs | None = None) -> Any:
    """One consumer's idempotent SQS handler.

    Its clients come from boto3's environment (``AWS_ENDPOINT_URL``), which the devstack sets
    before building handlers. With ``logs``, what its Powertools logger writes also goes to
    the function's log group in the emulator, as on Lambda.
    """
    from aws_lambda_powertools import Logger

    from infra.functions.consumer import build_consumer_handler

    function_name = built.consumers[name].function_name
    logger = Logger(service=function_name)
    if logs is not None:
        logs.attach(logger, f"/aws/lambda/{function_name}")
    return build_consumer_handler(
        name,
        idempotency_table=built.idempotency_table,
        orders_table=built.orders_table,
        logger=logger,
    )
