"""Lambda and recovery figures for ``make bench``, read from the synthesized configuration."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tools.package import FUNCTIONS, LAYER_DIR, stage_function, zip_size  # noqa: E402

PY = str(REPO_ROOT / ".venv" / "bin" / "python")
Row = dict[str, Any]
#: AWS Lambda x86_64 price in us-east-1 (per GB-second, and per million requests).
PRICE_GB_S = 0.0000166667
PRICE_PER_MILLION_REQUESTS = 0.20
#: Alias records to API Gateway regional domains answer with the target's TTL: 60 s.
ALIAS_TARGET_TTL_S = 60


def handler_env(staged: Path) -> dict[str, str]:
    """What the compute layer sets, with fake values: handlers read it at import."""
    return {
        **os.environ,
        "PYTHONPATH": f"{staged}:{LAYER_DIR / 'python'}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "PRIMARY_REGION": "us-east-1",
        "SECONDARY_REGION": "us-east-2",
        "ENVIRONMENT_SUFFIX": "bench",
        "TRANSACTIONS_TABLE": "t-bench",
        "IDEMPOTENCY_TABLE": "i-bench",
        "CONTROL_TABLE": "c-bench",
        "MERCHANTS_TABLE": "m-bench",
        "PROCESSING_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:alerts-bench",
        "PROCESSING_FUNCTION_NAME": "p-bench",
        "HEARTBEAT_STALE_SECONDS": "180",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }


def cold_import_ms(staged: Path, runs: int) -> float:
    """Median time to import ``handler`` in a fresh interpreter (the Lambda init phase's own share)."""
    code = "import time; t = time.perf_counter(); import handler; print(time.perf_counter() - t)"
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [PY, "-c", code], cwd=staged, env=handler_env(staged), capture_output=True, text=True, check=True
        )
        times.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
    return statistics.median(times)


def warm_cpu_s(function: str, staged: Path, requests: int) -> float:
    """CPU seconds per request once warm, AWS answered by botocore stubs (benchmarks/lambda_driver.py)."""
    driver = REPO_ROOT / "benchmarks" / "lambda_driver.py"
    done = subprocess.run(
        [PY, str(driver), function, str(requests)],
        cwd=staged,
        env=handler_env(staged),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["cpu_s_per_request"]


def stack(outdir: Path, name: str) -> dict[str, Any]:
    """The synthesized JSON of one stack."""
    return json.loads((outdir / "stacks" / name / "cdk.tf.json").read_text())


def resources(body: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    """Resources of one type in a stack."""
    return body.get("resource", {}).get(rtype, {})


def bench_lambda(outdir: Path, import_runs: int = 10, requests: int = 2000) -> list[Row]:
    """Zip size, cold import and warm CPU per function; compute cost per million payments."""
    rows: list[Row] = []
    compute = stack(outdir, "compute-us-east-1")
    functions = resources(compute, "aws_lambda_function")
    memory = {f: next(v["memory_size"] for k, v in functions.items() if k.startswith(f)) for f in FUNCTIONS}
    batch = next(iter(resources(compute, "aws_lambda_event_source_mapping").values()))["batch_size"]
    cpu: dict[str, float] = {}
    for function in FUNCTIONS:
        staged = stage_function(function).path
        size = zip_size(staged)
        rows.append(
            {
                "section": "lambda",
                "figure": f"{function} zip",
                "value": round(size / 1024, 1),
                "unit": "KiB",
                "target": "< 1024 KiB",
                "met": size < 1024 * 1024,
                "origin": "tools.package.zip_size",
            }
        )
        ms = cold_import_ms(staged, import_runs)
        rows.append(
            {
                "section": "lambda",
                "figure": f"{function} cold import (median)",
                "value": round(ms),
                "unit": "ms",
                "target": "< 300 ms",
                "met": ms < 300,
                "origin": f"fresh interpreter, {import_runs} runs, Powertools from the built layer",
            }
        )
        if function in ("payment_validation", "payment_processing"):
            cpu[function] = warm_cpu_s(function, staged, requests)
            per_core = 1 / cpu[function]
            row = {
                "section": "lambda",
                "figure": f"{function} warm requests/s per core",
                "value": round(per_core),
                "unit": "req/s",
                "origin": f"{requests} requests, botocore stubs (benchmarks/lambda_driver.py)",
            }
            if function == "payment_validation":
                row |= {"target": ">= 2000", "met": per_core >= 2000}
            rows.append(row)
        if function == "authorizer":
            decision = warm_cpu_s(function, staged, requests)
            rows.append(
                {
                    "section": "lambda",
                    "figure": "authorizer warm decision CPU (cache miss, valid key)",
                    "value": round(decision * 1000, 2),
                    "unit": "ms",
                    "origin": f"{requests} decisions, one stubbed GetItem each (benchmarks/lambda_driver.py)",
                }
            )
    gb_s = (
        cpu["payment_validation"] * memory["payment_validation"]
        + cpu["payment_processing"] * memory["payment_processing"]
    ) / 1024
    invocations = 1 + 1 / batch
    cost = 1_000_000 * (gb_s * PRICE_GB_S) + invocations * PRICE_PER_MILLION_REQUESTS
    rows.append(
        {
            "section": "lambda",
            "figure": "compute cost per million payments",
            "value": round(cost, 2),
            "unit": "USD",
            "origin": (
                f"CPU-bound lower bound: validation + processing CPU x memory ({memory['payment_validation']} MB)"
                f" x ${PRICE_GB_S}/GB-s + {invocations:.1f} invocations x ${PRICE_PER_MILLION_REQUESTS}/M;"
                " real duration adds DynamoDB/SQS round trips"
            ),
        }
    )
    return rows


def bench_recovery(outdir: Path) -> list[Row]:
    """Worst-case detection, DNS switch, RTO and RPO, every figure from the synthesized stacks."""
    edge = stack(outdir, "edge-us-east-1")
    https = next(v for v in resources(edge, "aws_route53_health_check").values() if v["type"] == "HTTPS")
    alarms = resources(edge, "aws_cloudwatch_metric_alarm")
    https_s = https["request_interval"] * https["failure_threshold"]
    alarm_s = max(a["period"] * a["evaluation_periods"] for a in alarms.values())
    compute = stack(outdir, "compute-us-east-1")
    orchestrator = next(v for k, v in resources(compute, "aws_lambda_function").items() if "orchestrator" in k)
    lease_s = int(orchestrator["environment"]["variables"]["LEASE_SECONDS"])
    margin_s = int(orchestrator["environment"]["variables"]["LEASE_SAFETY_MARGIN_SECONDS"])
    probe = next(iter(resources(stack(outdir, "observability-us-east-2"), "aws_cloudwatch_event_rule").values()))
    probe_s = 60 * int(probe["schedule_expression"].removeprefix("rate(").split()[0])
    replication = [
        a
        for a in resources(stack(outdir, "observability-us-east-1"), "aws_cloudwatch_metric_alarm").values()
        if a.get("metric_name") == "ReplicationLatency"
    ]
    rpo_ms = max(a["threshold"] for a in replication)
    rto_s = https_s + ALIAS_TARGET_TTL_S
    row = {"section": "recovery", "unit": "s"}
    return [
        row
        | {
            "figure": "detect: /health fails",
            "value": https_s,
            "origin": f"edge https-health-check request_interval {https['request_interval']} x failure_threshold "
            f"{https['failure_threshold']}",
        },
        row
        | {
            "figure": "detect: API alarm (5xx rate / latency)",
            "value": alarm_s,
            "origin": "edge alarms period x evaluation_periods (max over alarms)",
        },
        row
        | {
            "figure": "promote: region down (standby's lease watchdog)",
            "value": probe_s + lease_s + margin_s + probe_s,
            "origin": f"probe {probe_s} + LEASE_SECONDS {lease_s} + LEASE_SAFETY_MARGIN_SECONDS {margin_s} "
            f"+ probe {probe_s}",
        },
        row
        | {
            "figure": "DNS switch",
            "value": ALIAS_TARGET_TTL_S,
            "origin": "failover alias to the API Gateway regional domain: the target's TTL (60 s)",
        },
        row
        | {
            "figure": "worst-case RTO (region down)",
            "value": rto_s,
            "target": "<= 120 s",
            "met": rto_s <= 120,
            "origin": "/health detection + DNS switch",
        },
        row
        | {
            "figure": "worst-case RTO (grey failure, alarm path)",
            "value": alarm_s + ALIAS_TARGET_TTL_S,
            "origin": "API alarm detection + DNS switch (alarms whose metrics lag add up to 60 s more)",
        },
        {
            "section": "recovery",
            "figure": "RPO budget (replication alarm)",
            "value": rpo_ms,
            "unit": "ms",
            "origin": f"ReplicationLatency alarm threshold in observability ({len(replication)} tables)",
        },
    ]
