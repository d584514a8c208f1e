"""boto3 clients for the devstack, all pointed at one endpoint (the local moto server).

Plain boto3 on purpose: the devstack must not import Django or ``operations``.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
# moto's default account, used to build ARNs before a resource exists.
DEFAULT_ACCOUNT = "123456789012"


class Clients:
    """A lazy, thread-safe cache of boto3 clients for one endpoint and region.

    ``endpoint_url=None`` uses boto3's normal resolution, which is what ``mock_aws()`` intercepts
    in tests.
    """

    def __init__(self, endpoint_url: str | None = None, region: str = DEFAULT_REGION) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=50,
            # botocore >= 1.38 sends DynamoDB Streams to <account>.streams-ddb.<region>...,
            # a host moto's mock_aws does not route; the classic endpoint works everywhere.
            account_id_endpoint_mode="disabled",
        )

    def __call__(self, service: str) -> Any:
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                client = self._session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=self._config,
                )
                self._clients[service] = client
            return client

    def account_id(self) -> str:
        try:
            return str(self("sts").get_caller_identity()["Account"])
        except Exception:  # any STS failure: fall back to moto's default account
            return DEFAULT_ACCOUNT
