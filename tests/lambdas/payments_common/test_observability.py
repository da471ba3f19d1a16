"""The rejection metric: its own EMF blob, region / service / code dimensions, codes from a fixed set."""

from __future__ import annotations

import json
from typing import Any

import pytest
from payments_common import observability


def blobs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "payments-unit")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PaymentsUnit")
    return observability.metrics("us-east-2")


def test_a_rejection_is_one_blob_with_its_code(recorder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    observability.count_rejection(recorder, "malformed_json", frozenset({"malformed_json"}))
    (blob,) = blobs(capsys.readouterr().out)
    assert blob[observability.REJECTION_METRIC] == [1.0]
    assert (blob["region"], blob["service"], blob["code"]) == ("us-east-2", "payments-unit", "malformed_json")
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "PaymentsUnit"
    assert directive["Dimensions"] == [["region", "service", "code"]]


def test_a_code_outside_the_fixed_set_counts_as_other(recorder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    observability.count_rejection(recorder, "4111111111111111", frozenset({"malformed_json"}))
    out = capsys.readouterr().out
    (blob,) = blobs(out)
    assert blob["code"] == observability.OTHER_CODE
    assert "4111" not in out


def test_a_rejection_leaves_the_invocations_metrics_alone(recorder: Any, capsys: pytest.CaptureFixture[str]) -> None:
    recorder.add_metric(name="PaymentRequest", unit="Count", value=1)
    observability.count_rejection(recorder, "malformed_json", frozenset({"malformed_json"}))
    recorder.flush_metrics()
    found = {
        name: blob
        for blob in blobs(capsys.readouterr().out)
        for name in ("PaymentRequest", "PaymentRejected")
        if name in blob
    }
    assert set(found) == {"PaymentRequest", "PaymentRejected"}
    assert "code" not in found["PaymentRequest"]
