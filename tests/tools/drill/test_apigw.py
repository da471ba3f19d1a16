"""API Gateway: validation before the function, throttling answers, the proxy event, the authorizer hook."""

from __future__ import annotations

import json
from typing import Any

from tools.drill.apigw import ApiGateway
from tools.drill.clock import SimClock
from tools.drill.drill import MERCHANT, Drill
from tools.drill.synth import ApiSpec, RouteSpec

BODY = {"amount": "12.34", "currency": "USD", "merchant_id": MERCHANT, "card_token": "tok_api_0001"}


def post(api: ApiGateway, key: str | None, body: Any = BODY, auth: dict[str, str] | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Idempotency-Key": key} if key else {}), **(auth or {})}
    return api.request("POST", "/payments", headers, body if isinstance(body, str) else json.dumps(body))


def test_a_valid_payment_reaches_the_real_handler(wired: Drill) -> None:
    api = wired.apis[wired.topology.primary]
    wired.step()  # t=0: the primary's orchestrator probes and bootstraps the lease
    answer = post(api, "api-key-accepted", auth=wired.auth_headers())
    assert (answer.status, answer.body.get("status")) == (202, "PENDING"), (
        answer.status,
        answer.body,
        wired.orchestrator_results,
    )


def test_the_real_authorizer_refuses_a_missing_or_unknown_key(wired: Drill) -> None:
    api = wired.apis[wired.topology.primary]
    stats = wired.runtime.stats[(api.spec.region, "payment_validation")]
    before = stats.invocations
    assert post(api, "api-key-no-auth").status == 401
    wrong = wired.api_key[:-4] + ("AAAA" if not wired.api_key.endswith("AAAA") else "BBBB")
    assert post(api, "api-key-wrong-secret", auth={"Authorization": f"Bearer {wrong}"}).status in (401, 403)
    assert stats.invocations == before


def test_requests_the_model_refuses_never_reach_the_function(wired: Drill) -> None:
    region = wired.topology.primary
    api = wired.apis[region]
    stats = wired.runtime.stats[(region, "payment_validation")]
    before = stats.invocations
    assert post(api, None).status == 400
    assert post(api, "api-key-bad-body", {**BODY, "extra": 1}).status == 400
    assert post(api, "api-key-not-json", "{").status == 400
    assert api.request("GET", "/nowhere").status == 403
    assert stats.invocations == before


def test_the_stage_throttles_beyond_its_burst(wired: Drill) -> None:
    api = wired.apis[wired.topology.secondary]
    wired.clock.advance(10)  # a full bucket
    statuses = [api.request("GET", "/health").status for _ in range(api.spec.burst_limit + 1)]
    assert statuses[:-1] == [200] * api.spec.burst_limit
    assert statuses[-1] == 429
    wired.clock.advance(1)
    assert api.request("GET", "/health").status == 200


class AuthorizingRuntime:
    """Answers the authorizer with a policy and echoes the event the route function receives."""

    def __init__(self, effect: str) -> None:
        self.effect = effect
        self.events: list[dict[str, Any]] = []

    def invoke(self, region: str, key: str, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if key == "authorizer":
            return {
                "principalId": "m-1",
                "policyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": self.effect}]},
                "context": {"merchant_id": "m-1", "key_id": "k-1"},
            }
        return {"statusCode": 200, "body": json.dumps(event["requestContext"]["authorizer"])}


def authorized_api(runtime: AuthorizingRuntime) -> ApiGateway:
    route = RouteSpec(
        method="GET",
        path="/payments/{id}",
        function="payment_status",
        authorization="CUSTOM",
        required_headers=(),
        body_schema=None,
        authorizer_function="authorizer",
        identity_sources=("method.request.header.Authorization",),
    )
    spec = ApiSpec("us-east-1", (route,), 10.0, 10, "api-us-east-1.example", "v1", "api")
    return ApiGateway(spec, runtime, SimClock(), lambda region: False, lambda *args: None)  # type: ignore[arg-type]


def test_the_authorizer_context_reaches_the_handler() -> None:
    runtime = AuthorizingRuntime("Allow")
    answer = authorized_api(runtime).request("GET", "/payments/p-1", {"Authorization": "Bearer x"})
    assert answer.status == 200
    assert answer.body == {"merchant_id": "m-1", "key_id": "k-1", "principalId": "m-1"}
    assert runtime.events[-1]["pathParameters"] == {"id": "p-1"}


def test_a_denied_or_missing_credential_never_reaches_the_handler() -> None:
    runtime = AuthorizingRuntime("Deny")
    api = authorized_api(runtime)
    assert api.request("GET", "/payments/p-1", {"Authorization": "Bearer x"}).status == 403
    assert api.request("GET", "/payments/p-1", {}).status == 401
    assert [e.get("type") for e in runtime.events] == ["REQUEST"]
