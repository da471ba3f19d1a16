"""Powertools logger and metrics, configured from ``POWERTOOLS_*`` environment variables.

Handlers never log the event, a body or headers: only ids, codes and field names.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

#: Metrics namespace when ``POWERTOOLS_METRICS_NAMESPACE`` is not set.
DEFAULT_NAMESPACE = "Payments"
#: One count per refused request, by error ``code`` (a fixed set: the dimension stays bounded).
REJECTION_METRIC = "PaymentRejected"
#: ``code`` of a rejection whose code is not in the caller's fixed set.
OTHER_CODE = "other"


def logger() -> Logger:
    """The function's structured JSON logger (service from ``POWERTOOLS_SERVICE_NAME``)."""
    return Logger(log_uncaught_exceptions=False)


def metrics(region: str) -> Metrics:
    """EMF metrics with the region as a default dimension."""
    recorder = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)
    if recorder.default_dimensions.get("region") != region:
        recorder.set_default_dimensions(region=region)
    return recorder


def count_rejection(recorder: Metrics, code: str, codes: frozenset[str]) -> None:
    """Emit :data:`REJECTION_METRIC` now, in its own EMF blob, with a ``code`` dimension.

    Its own blob, so the ``code`` dimension never lands on the invocation's other metrics, and
    no ``log_metrics`` flush is needed (the status function has none). Dimensions: those of
    ``recorder`` (``region``), ``service``, and ``code``; a code outside ``codes`` counts as
    :data:`OTHER_CODE`, so the dimension's values stay a fixed set.
    """
    dimensions = dict(recorder.default_dimensions)
    if recorder.service:
        dimensions["service"] = str(recorder.service)
    with single_metric(
        name=REJECTION_METRIC,
        unit=MetricUnit.Count,
        value=1,
        namespace=recorder.namespace,
        default_dimensions=dimensions,
    ) as metric:
        metric.add_dimension(name="code", value=code if code in codes else OTHER_CODE)
