"""API Gateway in front of a region's functions, as the synthesized REST API configures it.

Routes (resource tree + methods), the request validator (required headers, and the body checked
against the very JSON schema of the request model), stage throttling (token bucket: rate and
burst; 429 when empty), the REQUEST authorizer when a method has one (its context lands in
``requestContext.authorizer``), the Lambda proxy integration (an unhandled error is a 502), and
the answers API Gateway gives on its own. Each answer is also a metric datapoint
(``Count``, ``5XXError``, ``4XXError``, ``Latency``) for the alarms.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from tools.drill.clock import SimClock
from tools.drill.runtime import Runtime
from tools.drill.synth import ApiSpec, RouteSpec


class Unreachable(ConnectionError):
    """The region's endpoint does not answer (the region is down)."""


@dataclass
class Answer:
    """An HTTP answer."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    region: str = ""


#: metric(region, namespace, name, dimensions, value)
MetricSink = Callable[[str, str, str, dict[str, str], float], None]


class ApiGateway:
    """One region's REST API stage."""

    def __init__(
        self, spec: ApiSpec, runtime: Runtime, clock: SimClock, is_down: Callable[[str], bool], metric: MetricSink
    ) -> None:
        self.spec, self.runtime, self.clock, self._is_down, self._metric = spec, runtime, clock, is_down, metric
        self._tokens = float(spec.burst_limit)
        self._refilled_at = clock.now
        self._routes = [(self._pattern(route.path), route) for route in spec.routes]
        self._validators = {
            id(route): jsonschema.Draft4Validator(route.body_schema) for route in spec.routes if route.body_schema
        }
        #: Faults: the region's API answers this status without calling the function.
        self.forced_status: int | None = None

    @staticmethod
    def _pattern(path: str) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")

    def _take_token(self) -> bool:
        elapsed = self.clock.now - self._refilled_at
        self._tokens = min(float(self.spec.burst_limit), self._tokens + elapsed * self.spec.rate_limit)
        self._refilled_at = self.clock.now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, body: str | None = None) -> Answer:
        """One HTTPS request to the stage; :class:`Unreachable` when the region is down."""
        if self._is_down(self.spec.region):
            raise Unreachable(self.spec.regional_host)
        answer = self._answer(method, path, headers or {}, body)
        answer.region = self.spec.region
        stage = {"ApiName": self.spec.api_name, "Stage": self.spec.stage}
        # Stage-level datapoints always; method-level ones (detailed metrics) for a matched route.
        route = next((r for pattern, r in self._routes if r.method == method and pattern.match(path)), None)
        for dims in (stage, *([{**stage, "Method": route.method, "Resource": route.path}] if route else [])):
            self._metric(self.spec.region, "AWS/ApiGateway", "Count", dims, 1.0)
            self._metric(self.spec.region, "AWS/ApiGateway", "5XXError", dims, float(answer.status >= 500))
            self._metric(self.spec.region, "AWS/ApiGateway", "4XXError", dims, float(400 <= answer.status < 500))
            self._metric(self.spec.region, "AWS/ApiGateway", "Latency", dims, 50.0)
        return answer

    def _answer(self, method: str, path: str, headers: dict[str, str], body: str | None) -> Answer:
        if not self._take_token():
            return Answer(429, {}, {"message": "Too Many Requests"})
        for pattern, route in self._routes:
            match = pattern.match(path)
            if match and route.method == method:
                return self._route(route, path, match.groupdict(), headers, body)
        return Answer(403, {}, {"message": "Missing Authentication Token"})

    def _route(
        self, route: RouteSpec, path: str, params: dict[str, str], headers: dict[str, str], body: str | None
    ) -> Answer:
        if self.forced_status is not None:
            return Answer(self.forced_status, {}, {"message": "drill: injected API failure"})
        lowered = {name.lower(): value for name, value in headers.items()}
        missing = [name for name in route.required_headers if name.lower() not in lowered]
        if missing:
            return Answer(400, {}, {"message": f"Missing required request parameters: [{', '.join(missing)}]"})
        validator = self._validators.get(id(route))
        if validator is not None:
            try:
                parsed = json.loads(body or "")
            except ValueError:
                return Answer(400, {}, {"message": "Invalid request body"})
            if not validator.is_valid(parsed):
                return Answer(400, {}, {"message": "Invalid request body"})
        request_context: dict[str, Any] = {
            "requestId": str(uuid.uuid4()),
            "stage": self.spec.stage,
            "resourcePath": route.path,
            "httpMethod": route.method,
            "path": f"/{self.spec.stage}{path}",
            "identity": {"sourceIp": "198.51.100.7"},
        }
        if route.authorizer_function:
            denied = self._authorize(route, path, headers, request_context)
            if denied is not None:
                return denied
        event = {
            "resource": route.path,
            "path": path,
            "httpMethod": route.method,
            "headers": dict(headers),
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": request_context,
            "body": body,
            "isBase64Encoded": False,
        }
        try:
            result = self.runtime.invoke(self.spec.region, route.function, event)
        except Exception:
            return Answer(502, {}, {"message": "Internal server error"})
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            return Answer(502, {}, {"message": "Internal server error"})
        text = result.get("body") or ""
        try:
            payload: Any = json.loads(text) if text else None
        except ValueError:
            payload = text
        return Answer(result["statusCode"], dict(result.get("headers") or {}), payload)

    def _authorize(
        self, route: RouteSpec, path: str, headers: dict[str, str], request_context: dict[str, Any]
    ) -> Answer | None:
        """Run the REQUEST authorizer; an answer when the request is refused, else None (context set)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        for source in route.identity_sources:
            if source.startswith("method.request.header.") and source.split(".", 3)[3].lower() not in lowered:
                return Answer(401, {}, {"message": "Unauthorized"})
        event = {
            "type": "REQUEST",
            "methodArn": (
                f"arn:aws:execute-api:{self.spec.region}:123456789012:drillapi/{self.spec.stage}/{route.method}{path}"
            ),
            "resource": route.path,
            "path": path,
            "httpMethod": route.method,
            "headers": dict(headers),
            "requestContext": dict(request_context),
        }
        try:
            policy = self.runtime.invoke(self.spec.region, route.authorizer_function or "", event)
        except Exception:
            return Answer(500, {}, {"message": None})
        if policy == "Unauthorized" or not isinstance(policy, dict):
            return Answer(401, {}, {"message": "Unauthorized"})
        statements = (policy.get("policyDocument") or {}).get("Statement") or []
        effects = {statement.get("Effect") for statement in statements}
        if "Allow" not in effects or "Deny" in effects:
            return Answer(403, {}, {"message": "User is not authorized to access this resource"})
        request_context["authorizer"] = {**(policy.get("context") or {}), "principalId": policy.get("principalId")}
        return None
