"""boto3 clients, created once per execution environment and reused by every invocation.

Every client uses botocore's ``standard`` retry mode (exponential backoff with jitter on
throttling and transient errors) and short timeouts, so a slow dependency fails an
invocation instead of hanging it until the Lambda timeout.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

_session: boto3.session.Session | None = None


def session() -> boto3.session.Session:
    """One boto3 session per environment: service models are loaded once and shared."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session


def client(
    service: str,
    *,
    region: str | None = None,
    max_attempts: int = 4,
    connect_timeout: float = 2.0,
    read_timeout: float = 5.0,
) -> Any:
    """A client for ``service`` in ``region`` (default: the function's own region)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        tcp_keepalive=True,
    )
    return session().client(service, region_name=region, config=config)
