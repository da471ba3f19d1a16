"""Powertools logger and metrics, configured from ``POWERTOOLS_*`` environment variables.

Handlers never log the event, a body or headers: only ids, codes and field names.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

#: Metrics namespace when ``POWERTOOLS_METRICS_NAMESPACE`` is not set.
DEFAULT_NAMESPACE = "Payments"


def logger() -> Logger:
    """The function's structured JSON logger (service from ``POWERTOOLS_SERVICE_NAME``)."""
    return Logger(log_uncaught_exceptions=False)


def metrics(region: str) -> Metrics:
    """EMF metrics with the region as a default dimension."""
    recorder = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)
    if recorder.default_dimensions.get("region") != region:
        recorder.set_default_dimensions(region=region)
    return recorder
