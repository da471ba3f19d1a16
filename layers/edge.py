"""Edge layer: the hosted zone (``edge-global``) and, per region, the API, its TLS names and the failover switch.

How a payment reaches a region: the client resolves ``api.<zone>``; Route 53 answers with the
PRIMARY region's custom domain while that region's calculated health check is healthy, else the
SECONDARY's. The custom domain (TLS 1.2, an ACM certificate per region) maps to stage ``v1`` of
the region's REST API; the WAF web ACL on the stage filters first, then API Gateway checks the
merchant's API key with the region's ``REQUEST`` Lambda authorizer (cached per ``Authorization``
header), the required ``Idempotency-Key`` header and the body against the JSON schema in
``layers/schemas/payment_request.json``, and only then invokes the region's Lambda. Every answer
API Gateway gives itself (gateway responses) is JSON in the Lambda errors' shape.

What moves DNS is data plane only: an HTTPS health check of ``https://api-<region>.<zone>/health``
and CloudWatch-metric health checks on the API alarms (5xx rate and average latency of each
payment route, method-level metrics), combined in one calculated health check per region. No
Lambda has to run for traffic to move.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cdktf import Fn, TerraformIterator, TerraformOutput, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate, AcmCertificateOptions
from cdktf_cdktf_provider_aws.acm_certificate_validation import (
    AcmCertificateValidation,
    AcmCertificateValidationTimeouts,
)
from cdktf_cdktf_provider_aws.api_gateway_authorizer import ApiGatewayAuthorizer
from cdktf_cdktf_provider_aws.api_gateway_base_path_mapping import ApiGatewayBasePathMapping
from cdktf_cdktf_provider_aws.api_gateway_deployment import ApiGatewayDeployment
from cdktf_cdktf_provider_aws.api_gateway_domain_name import (
    ApiGatewayDomainName,
    ApiGatewayDomainNameEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.api_gateway_gateway_response import ApiGatewayGatewayResponse
from cdktf_cdktf_provider_aws.api_gateway_integration import ApiGatewayIntegration
from cdktf_cdktf_provider_aws.api_gateway_method import ApiGatewayMethod
from cdktf_cdktf_provider_aws.api_gateway_method_settings import (
    ApiGatewayMethodSettings,
    ApiGatewayMethodSettingsSettings,
)
from cdktf_cdktf_provider_aws.api_gateway_model import ApiGatewayModel
from cdktf_cdktf_provider_aws.api_gateway_request_validator import ApiGatewayRequestValidator
from cdktf_cdktf_provider_aws.api_gateway_resource import ApiGatewayResource
from cdktf_cdktf_provider_aws.api_gateway_rest_api import (
    ApiGatewayRestApi,
    ApiGatewayRestApiEndpointConfiguration,
)
from cdktf_cdktf_provider_aws.api_gateway_stage import ApiGatewayStage, ApiGatewayStageAccessLogSettings
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.route53_health_check import Route53HealthCheck
from cdktf_cdktf_provider_aws.route53_record import (
    Route53Record,
    Route53RecordAlias,
    Route53RecordFailoverRoutingPolicy,
)
from cdktf_cdktf_provider_aws.route53_zone import Route53Zone
from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclAssociationConfig,
    Wafv2WebAclAssociationConfigRequestBody,
    Wafv2WebAclAssociationConfigRequestBodyApiGateway,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationLoggingFilter,
    Wafv2WebAclLoggingConfigurationLoggingFilterFilter,
    Wafv2WebAclLoggingConfigurationLoggingFilterFilterCondition,
    Wafv2WebAclLoggingConfigurationLoggingFilterFilterConditionActionCondition,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from layers.base import BackendSettings, LayerStack
from layers.compute import HEALTH_PATH, ComputeStack
from layers.config import REGION_CODES, Config

#: JSON schema (draft-04, what API Gateway models accept) of the ``POST /payments`` body.
PAYMENT_REQUEST_SCHEMA = Path(__file__).resolve().parent / "schemas" / "payment_request.json"
#: Name of the request model: API Gateway model names must be alphanumeric, and are scoped to the API.
PAYMENT_REQUEST_MODEL = "PaymentRequest"
#: The one stage; custom domains map their root to it, so URLs carry no stage or version prefix.
STAGE_NAME = "v1"
# HEALTH_PATH (layers/compute.py): the path the Route 53 HTTPS health check requests (no
# authorization: health checkers cannot sign); the orchestrator's own-health probe requests it too.
#: Header the validation Lambda keys idempotency on; API Gateway rejects a request without it.
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Largest request body the validation Lambda accepts; the WAF blocks anything larger first.
MAX_BODY_BYTES = 16 * 1024
#: Route 53 HTTPS health check interval (10 s is the "fast" interval).
HEALTH_CHECK_INTERVAL_SECONDS = 10
#: API Gateway metrics reach CloudWatch about a minute after the requests they count.
METRIC_DELAY_SECONDS = 60
#: TTL resolvers cache an alias answer for: Route 53 uses the target's, 60 s for API Gateway domains.
ALIAS_TTL_SECONDS = 60
#: API Gateway names a stage's execution log group ``API-Gateway-Execution-Logs_<api id>/<stage>``.
EXECUTION_LOG_GROUP_PREFIX = "API-Gateway-Execution-Logs_"
#: Headers WAF logs must never hold: the merchant's API key (and a SigV4 signature or STS token, if one is sent).
REDACTED_HEADERS = ("authorization", "x-amz-security-token")
#: The header the authorizer reads (``Bearer <API key>``); API Gateway caches its answers per value.
AUTHORIZATION_HEADER = "Authorization"
#: Authorization of the payment routes: the REQUEST Lambda authorizer.
CUSTOM = "CUSTOM"


@dataclass(frozen=True)
class GatewayResponse:
    """What API Gateway answers itself: status, ``{"error": code, "message": ...}``, ``Retry-After``."""

    response_type: str
    status: int | None
    code: str
    message: str
    retry_after: int | None = None


#: Every answer API Gateway gives on its own, in the Lambda errors' JSON shape. None is a 5xx but
#: the region's own faults (the authorizer or an integration failing), which must count as such.
#: Messages are fixed: ``$context.error.validationErrorString`` could quote a rejected card number.
GATEWAY_RESPONSES: tuple[GatewayResponse, ...] = (
    GatewayResponse("UNAUTHORIZED", 401, "missing_credentials", "send Authorization: Bearer <API key>"),
    GatewayResponse("ACCESS_DENIED", 403, "access_denied", "the API key is not valid for this API"),
    GatewayResponse("BAD_REQUEST_BODY", 400, "invalid_request", "the body does not match the payment request schema"),
    GatewayResponse(
        "BAD_REQUEST_PARAMETERS", 400, "missing_parameter", "a required header or path parameter is missing"
    ),
    GatewayResponse("REQUEST_TOO_LARGE", 413, "request_too_large", "the request is too large"),
    GatewayResponse("THROTTLED", 429, "throttled", "too many requests, retry shortly", retry_after=1),
    GatewayResponse("QUOTA_EXCEEDED", 429, "throttled", "too many requests, retry shortly", retry_after=1),
    GatewayResponse("WAF_FILTERED", 403, "request_blocked", "the request was blocked"),
    GatewayResponse("MISSING_AUTHENTICATION_TOKEN", 404, "not_found", "no such route"),
    GatewayResponse("UNSUPPORTED_MEDIA_TYPE", 415, "unsupported_media_type", "send application/json"),
    GatewayResponse("DEFAULT_4XX", None, "request_refused", "the request was refused"),
    GatewayResponse("AUTHORIZER_FAILURE", 503, "temporarily_unavailable", "retry shortly", retry_after=5),
    GatewayResponse("AUTHORIZER_CONFIGURATION_ERROR", 503, "temporarily_unavailable", "retry shortly", retry_after=5),
    GatewayResponse("DEFAULT_5XX", None, "temporarily_unavailable", "retry shortly", retry_after=5),
)

#: Access log line (JSON). Never the body or headers (payment data, credentials), and never
#: ``$context.error.validationErrorString``: it quotes the rejected value, which may be a card number.
#: Nor any other text the client chooses: the request path (``resourcePath`` is the route's template,
#: never the ``{id}`` sent) and the User-Agent.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "domainName": "$context.domainName",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "protocol": "$context.protocol",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "errorMessage": "$context.error.message",
        "errorType": "$context.error.responseType",
        "wafStatus": "$context.waf.status",
        "sourceIp": "$context.identity.sourceIp",
        # Who called: the authorizer's merchant and key id, never the Authorization header or the key.
        "merchantId": "$context.authorizer.merchant_id",
        "keyId": "$context.authorizer.key_id",
        "xrayTraceId": "$context.xrayTraceId",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class Route:
    """One API route: method and path, the function behind it, and how callers authenticate."""

    key: str
    method: str
    path: str
    function: str
    authorization: str

    @property
    def path_parameters(self) -> list[str]:
        """Names of the path parameters (``{id}`` -> ``id``)."""
        return [part.strip("{}") for part in self.path.split("/") if part.startswith("{")]

    @property
    def source_arn_path(self) -> str:
        """The path as it appears in an execute-api ARN: path parameters become ``*``."""
        return "/".join("*" if part.startswith("{") else part for part in self.path.split("/"))


#: Payment routes need a merchant API key (the REQUEST authorizer); /health is open for Route 53.
ROUTES: tuple[Route, ...] = (
    Route("create_payment", "POST", "/payments", "payment_validation", CUSTOM),
    Route("get_payment", "GET", "/payments/{id}", "payment_status", CUSTOM),
    Route("health", "GET", HEALTH_PATH, "health", "NONE"),
)
#: Routes whose own method-level metrics steer DNS: not /health, whose Route 53 checkers (several
#: requests a second) would dilute the 5xx rate until a total payment failure hid under it.
PAYMENT_ROUTES: tuple[Route, ...] = tuple(route for route in ROUTES if route.path != HEALTH_PATH)


def execution_log_group_name(rest_api_id: str) -> str:
    """The log group API Gateway writes a stage's execution logs to (its name is AWS's, not ours)."""
    return f"{EXECUTION_LOG_GROUP_PREFIX}{rest_api_id}/{STAGE_NAME}"


def zone_name(config: Config) -> str:
    """The deployment's hosted zone: ``<suffix>.<domainName>``."""
    return config.zone_name


def client_host(config: Config) -> str:
    """The one name clients use; Route 53 failover decides which region answers it."""
    return f"api.{zone_name(config)}"


def regional_host(config: Config, region: str) -> str:
    """A region's own name, for the HTTPS health check and for direct access (checked at config load)."""
    return config.regional_host(region)


@cache
def payment_request_schema() -> dict[str, Any]:
    """The JSON schema of the ``POST /payments`` body, as the request model embeds it."""
    schema: dict[str, Any] = json.loads(PAYMENT_REQUEST_SCHEMA.read_text())
    if schema.get("$schema") != "http://json-schema.org/draft-04/schema#":
        raise ValueError(f"{PAYMENT_REQUEST_SCHEMA.name}: API Gateway models need JSON schema draft-04")
    return schema


@dataclass(frozen=True)
class FailoverTimings:
    """Worst-case seconds from a failure to clients resolving the other region (README, outputs)."""

    #: A failing /health: every checker needs ``failure_threshold`` failed checks in a row.
    https_detection: int
    #: An API alarm: ``alarmEvaluationPeriods`` full periods must breach.
    alarm_detection: int
    #: API Gateway datapoints reach CloudWatch (and so Route 53) about a minute late.
    metric_delay: int
    #: Resolvers may keep the old answer this long after Route 53 changes it.
    dns_ttl: int

    @property
    def https_worst_case(self) -> int:
        """HTTPS health check path, end to end."""
        return self.https_detection + self.dns_ttl

    @property
    def alarm_worst_case(self) -> int:
        """Alarm path, end to end."""
        return self.alarm_detection + self.metric_delay + self.dns_ttl


def failover_timings(config: Config) -> FailoverTimings:
    """Failover timings from this config."""
    return FailoverTimings(
        https_detection=HEALTH_CHECK_INTERVAL_SECONDS * config.health_check_failure_threshold,
        alarm_detection=config.alarm_period_seconds * config.alarm_evaluation_periods,
        metric_delay=METRIC_DELAY_SECONDS,
        dns_ttl=ALIAS_TTL_SECONDS,
    )


class EdgeGlobalStack(LayerStack):
    """What is global at the edge: the hosted zone, and the one validation record both regions share."""

    def __init__(self, scope: Construct, *, config: Config, backend: BackendSettings) -> None:
        super().__init__(scope, layer="edge", region=None, config=config, backend=backend)
        self.zone_name = zone_name(config)
        # Per suffix, so parallel deployments never share a record; force_destroy lets a
        # destroy remove records Terraform does not manage (e.g. left by a failed apply).
        self.zone = Route53Zone(
            self,
            "zone",
            name=self.zone_name,
            comment=f"payments API ({config.environment_suffix}); delegate it from {config.domain_name}",
            force_destroy=True,
        )
        self.client_validation_record = self._client_validation_record(config)
        TerraformOutput(self, "zone_id", value=self.zone.zone_id)
        TerraformOutput(
            self,
            "name_servers",
            value=self.zone.name_servers,
            description=f"Add these as NS records for {self.zone_name} in the {config.domain_name} zone",
        )

    def _client_validation_record(self, config: Config) -> Route53Record:
        """The ACM validation CNAME of ``api.<zone>``, owned here and nowhere else.

        ACM gives a domain name the same validation CNAME in every region of an account, so both
        regions' certificates (whose alternative name is ``api.<zone>``) validate and renew with this
        one record. Owned by a regional stack, destroying that region would delete what the other
        region's certificate renews with; here it lives as long as the zone. Its value comes from a
        certificate for ``api.<zone>`` alone (free, never attached to anything), the only way to learn it
        before the regional stacks exist.
        """
        anchor = AcmCertificate(
            self,
            "client-name-certificate",
            domain_name=client_host(config),
            validation_method="DNS",
            key_algorithm="RSA_2048",
            options=AcmCertificateOptions(certificate_transparency_logging_preference="ENABLED"),
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # One name, so one option: a single record needs no plan-time for_each key.
        option = f"tolist({anchor.terraform_resource_type}.{anchor.friendly_unique_id}.domain_validation_options)[0]"
        return Route53Record(
            self,
            "client-validation-record",
            zone_id=self.zone.zone_id,
            name=f"${{{option}.resource_record_name}}",
            type=f"${{{option}.resource_record_type}}",
            records=[f"${{{option}.resource_record_value}}"],
            ttl=60,
            # Adopts the record a regional stack of an older version created (README, "ACM records").
            allow_overwrite=True,
        )


class EdgeStack(LayerStack):
    """API, custom domains, WAF, health checks and failover record of one region.

    Identical in both regions except for the failover role (PRIMARY in the primary region).
    """

    def __init__(
        self,
        scope: Construct,
        *,
        region: str,
        config: Config,
        backend: BackendSettings,
        compute: ComputeStack,
        zone: EdgeGlobalStack,
        account: LayerStack | None = None,
    ) -> None:
        super().__init__(scope, layer="edge", region=region, config=config, backend=backend)
        self.compute = compute
        self.zone = zone
        self.add_dependency(compute)
        self.add_dependency(zone)
        # API Gateway's account-wide logging role (layers/account.py), when this deployment owns it.
        if account is not None:
            self.add_dependency(account)
        self.failover_role = "PRIMARY" if config.is_primary(region) else "SECONDARY"
        self.client_host = client_host(config)
        self.regional_host = regional_host(config, region)
        self.api_name = self.name("payments-api")
        self.client_url = f"https://{self.client_host}"
        self.regional_url = f"https://{self.regional_host}"

        self.certificate_arn = self._certificate()
        self.rest_api, self.methods = self._rest_api()
        self.stage = self._stage()
        self.domains = self._custom_domains()
        self.web_acl = self._web_acl()
        self.api_alarms = self._api_alarms()
        self.regional_record = self._regional_record()
        self.https_health_check, self.region_health_check = self._health_checks()
        self.failover_record = self._failover_record()
        self._outputs()

    # --- TLS -----------------------------------------------------------------------------------

    def _certificate(self) -> str:
        """An ACM certificate for ``api-<region>.<zone>`` and ``api.<zone>``, validated through the zone.

        The common name is the region's own, so the certificate a client is served tells which
        region answered. This stack writes the validation record of its own name only; the record of
        ``api.<zone>``, identical for both regions' certificates, belongs to ``edge-global``, so
        destroying one region never removes what the other region's certificate renews with.
        """
        certificate = AcmCertificate(
            self,
            "certificate",
            domain_name=self.regional_host,
            subject_alternative_names=[self.client_host],
            validation_method="DNS",
            key_algorithm="RSA_2048",
            options=AcmCertificateOptions(certificate_transparency_logging_preference="ENABLED"),
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # Iterate the set itself, keyed by domain name: `tolist()` (what from_complex_list emits) makes
        # the for_each keys unknown until apply, and Terraform refuses to plan the records.
        by_domain = f"${{{{ for dvo in {certificate.terraform_resource_type}.{certificate.friendly_unique_id}"
        by_domain += (
            f'.domain_validation_options : dvo.domain_name => dvo if dvo.domain_name != "{self.client_host}" }}}}'
        )
        validation_options = TerraformIterator.from_map(Token.as_any_map(by_domain))
        records = Route53Record(
            self,
            "certificate-validation-record",
            for_each=validation_options,
            zone_id=self.zone.zone.zone_id,
            name=validation_options.get_string("resource_record_name"),
            type=validation_options.get_string("resource_record_type"),
            records=[validation_options.get_string("resource_record_value")],
            ttl=60,
        )
        own = Token.as_list(TerraformIterator.from_resources(records).pluck_property("fqdn"))
        validation = AcmCertificateValidation(
            self,
            "certificate-validation",
            certificate_arn=certificate.arn,
            # Its own name's record, and api.<zone>'s, which edge-global owns.
            validation_record_fqdns=Token.as_list(Fn.concat([own, [self.zone.client_validation_record.fqdn]])),
            # Issuance needs the zone delegated from the parent domain; fail within the hour, not 75 min.
            timeouts=AcmCertificateValidationTimeouts(create="45m"),
        )
        return validation.certificate_arn

    # --- API -----------------------------------------------------------------------------------

    def _rest_api(self) -> tuple[ApiGatewayRestApi, dict[str, ApiGatewayMethod]]:
        """REST API with the three routes, Lambda proxy integrations and request validation."""
        api = ApiGatewayRestApi(
            self,
            "rest-api",
            name=self.api_name,
            description=f"Payments API ({self.region}); clients call {self.client_url}",
            endpoint_configuration=ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            # Only the custom domains (TLS 1.2, failover name) reach the API.
            disable_execute_api_endpoint=True,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        model = ApiGatewayModel(
            self,
            "payment-request-model",
            rest_api_id=api.id,
            name=PAYMENT_REQUEST_MODEL,
            description="POST /payments body (layers/schemas/payment_request.json)",
            content_type="application/json",
            schema=json.dumps(payment_request_schema(), separators=(",", ":"), sort_keys=True),
        )
        body_validator = ApiGatewayRequestValidator(
            self,
            "validate-body-and-parameters",
            rest_api_id=api.id,
            name=self.name("body-and-parameters"),
            validate_request_body=True,
            validate_request_parameters=True,
        )
        parameter_validator = ApiGatewayRequestValidator(
            self,
            "validate-parameters",
            rest_api_id=api.id,
            name=self.name("parameters"),
            validate_request_body=False,
            validate_request_parameters=True,
        )

        self.authorizer = self._authorizer(api)
        gateway_responses = self._gateway_responses(api)
        resources: dict[str, str] = {"": api.root_resource_id}
        for route in ROUTES:
            self._resource_for(api, route.path, resources)

        methods: dict[str, ApiGatewayMethod] = {}
        integrations: list[ApiGatewayIntegration] = []
        for route in ROUTES:
            function = self.compute.functions[route.function]
            resource_id = resources[route.path]
            request: dict[str, Any] = {}
            if route.key == "create_payment":
                # "$default": the body is checked whatever Content-Type the client sends.
                request = {
                    "request_models": {"$default": model.name},
                    "request_parameters": {f"method.request.header.{IDEMPOTENCY_HEADER}": True},
                    "request_validator_id": body_validator.id,
                }
            else:
                # Path parameters must be present; /health has none, but is validated all the same.
                required = {f"method.request.path.{name}": True for name in route.path_parameters}
                request = {"request_parameters": required or None, "request_validator_id": parameter_validator.id}
            method = ApiGatewayMethod(
                self,
                f"method-{route.key}",
                rest_api_id=api.id,
                resource_id=resource_id,
                http_method=route.method,
                authorization=route.authorization,
                authorizer_id=self.authorizer.id if route.authorization == CUSTOM else None,
                **request,
            )
            methods[route.key] = method
            integrations.append(
                ApiGatewayIntegration(
                    self,
                    f"integration-{route.key}",
                    rest_api_id=api.id,
                    resource_id=resource_id,
                    http_method=method.http_method,
                    type="AWS_PROXY",
                    integration_http_method="POST",
                    uri=function.invoke_arn,
                )
            )
            LambdaPermission(
                self,
                f"permission-{route.key}",
                statement_id=f"api-gateway-{route.key.replace('_', '-')}",
                action="lambda:InvokeFunction",
                function_name=function.function_name,
                principal="apigateway.amazonaws.com",
                # This API, this stage, this method and path only.
                source_arn=f"{api.execution_arn}/{STAGE_NAME}/{route.method}{route.source_arn_path}",
            )

        # A new deployment whenever the API definition changes; created before the old one goes.
        definition = {
            "routes": [asdict(route) for route in ROUTES],
            "schema": payment_request_schema(),
            "idempotency_header": IDEMPOTENCY_HEADER,
            "gateway_responses": [asdict(response) for response in GATEWAY_RESPONSES],
        }
        self.deployment = ApiGatewayDeployment(
            self,
            "deployment",
            rest_api_id=api.id,
            description="Managed by cdktf; a new deployment on every API change",
            triggers={
                "redeployment": Fn.sha1(
                    Fn.jsonencode(
                        [
                            hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest(),
                            model.id,
                            body_validator.id,
                            parameter_validator.id,
                            self.authorizer.id,
                            *[r.id for r in gateway_responses],
                            *[m.id for m in methods.values()],
                            *[i.id for i in integrations],
                            *[i.uri for i in integrations],
                        ]
                    )
                )
            },
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
            depends_on=[*methods.values(), *integrations, *gateway_responses],
        )
        return api, methods

    def _authorizer(self, api: ApiGatewayRestApi) -> ApiGatewayAuthorizer:
        """The REQUEST authorizer: this region's function, its answers cached per Authorization header."""
        function = self.compute.functions["authorizer"]
        authorizer = ApiGatewayAuthorizer(
            self,
            "authorizer",
            rest_api_id=api.id,
            name=self.name("merchant-api-key"),
            type="REQUEST",
            authorizer_uri=function.invoke_arn,
            # A request without the header is refused (401) before the function runs.
            identity_source=f"method.request.header.{AUTHORIZATION_HEADER}",
            authorizer_result_ttl_in_seconds=self.config.authorizer_cache_ttl_seconds,
        )
        LambdaPermission(
            self,
            "permission-authorizer",
            statement_id="api-gateway-authorizer",
            action="lambda:InvokeFunction",
            function_name=function.function_name,
            principal="apigateway.amazonaws.com",
            # This API's authorizer only.
            source_arn=f"{api.execution_arn}/authorizers/{authorizer.id}",
        )
        return authorizer

    def _gateway_responses(self, api: ApiGatewayRestApi) -> list[ApiGatewayGatewayResponse]:
        """:data:`GATEWAY_RESPONSES` as JSON in the Lambda errors' shape, never cached."""
        responses = []
        for spec in GATEWAY_RESPONSES:
            headers = {
                "gatewayresponse.header.Content-Type": "'application/json'",
                "gatewayresponse.header.Cache-Control": "'no-store'",
            }
            if spec.retry_after is not None:
                headers["gatewayresponse.header.Retry-After"] = f"'{spec.retry_after}'"
            if spec.response_type == "UNAUTHORIZED":
                headers["gatewayresponse.header.WWW-Authenticate"] = "'Bearer'"
            body = json.dumps({"error": spec.code, "message": spec.message}, separators=(",", ":"), sort_keys=True)
            responses.append(
                ApiGatewayGatewayResponse(
                    self,
                    f"gateway-response-{spec.response_type.lower().replace('_', '-')}",
                    rest_api_id=api.id,
                    response_type=spec.response_type,
                    status_code=str(spec.status) if spec.status is not None else None,
                    response_templates={"application/json": body},
                    response_parameters=headers,
                )
            )
        return responses

    def _resource_for(self, api: ApiGatewayRestApi, path: str, resources: dict[str, str]) -> str:
        """The id of the API resource at ``path``, creating it and its parents once."""
        if path in resources:
            return resources[path]
        parent, _, part = path.rpartition("/")
        parent_id = self._resource_for(api, parent, resources)
        slug = path.strip("/").replace("/", "-").replace("{", "").replace("}", "")
        resource = ApiGatewayResource(self, f"resource-{slug}", rest_api_id=api.id, parent_id=parent_id, path_part=part)
        resources[path] = resource.id
        return resource.id

    def _stage(self) -> ApiGatewayStage:
        """Stage ``v1``: JSON access logs (encrypted), X-Ray, metrics, throttling, no caching, no body logging."""
        self.access_log_group = CloudwatchLogGroup(
            self,
            "access-log-group",
            name=f"/aws/apigateway/{self.name('payments-api-access')}",
            retention_in_days=self.config.log_retention_days,
            kms_key_id=self.compute.data.key_arn,
        )
        # With execution logging on, API Gateway creates this group itself on the first error, with no
        # retention, no key and no tags, and nothing deletes it on destroy. Created here first, it is
        # ours: the naming rule's one exception (AWS fixes the name; the API's own name is suffixed).
        self.execution_log_group = CloudwatchLogGroup(
            self,
            "execution-log-group",
            name=execution_log_group_name(self.rest_api_id),
            retention_in_days=self.config.log_retention_days,
            kms_key_id=self.compute.data.key_arn,
        )
        stage = ApiGatewayStage(
            self,
            "stage",
            rest_api_id=self.rest_api_id,
            deployment_id=self.deployment.id,
            stage_name=STAGE_NAME,
            description="Payments API; custom domains map their root here",
            xray_tracing_enabled=True,
            cache_cluster_enabled=False,
            access_log_settings=ApiGatewayStageAccessLogSettings(
                destination_arn=self.access_log_group.arn, format=ACCESS_LOG_FORMAT
            ),
            depends_on=[self.execution_log_group],
        )
        self.method_settings = ApiGatewayMethodSettings(
            self,
            "method-settings",
            rest_api_id=self.rest_api_id,
            stage_name=stage.stage_name,
            method_path="*/*",
            settings=ApiGatewayMethodSettingsSettings(
                metrics_enabled=True,
                # ERROR only, and never data trace: request bodies hold payment data.
                logging_level="ERROR",
                data_trace_enabled=False,
                caching_enabled=False,
                throttling_rate_limit=self.config.api_throttling_rate_limit,
                throttling_burst_limit=self.config.api_throttling_burst_limit,
            ),
        )
        return stage

    @property
    def rest_api_id(self) -> str:
        """Id of the region's REST API."""
        return self.rest_api.id

    def _custom_domains(self) -> dict[str, ApiGatewayDomainName]:
        """``api-<region>.<zone>`` and ``api.<zone>``, TLS 1.2, root mapped to stage v1."""
        domains: dict[str, ApiGatewayDomainName] = {}
        self.base_path_mappings: list[ApiGatewayBasePathMapping] = []
        for key, host in (("regional", self.regional_host), ("client", self.client_host)):
            domain = ApiGatewayDomainName(
                self,
                f"domain-{key}",
                domain_name=host,
                regional_certificate_arn=self.certificate_arn,
                endpoint_configuration=ApiGatewayDomainNameEndpointConfiguration(types=["REGIONAL"]),
                security_policy="TLS_1_2",
            )
            mapping = ApiGatewayBasePathMapping(
                self,
                f"base-path-{key}",
                api_id=self.rest_api_id,
                domain_name=domain.domain_name,
                stage_name=self.stage.stage_name,
            )
            self.base_path_mappings.append(mapping)
            domains[key] = domain
        return domains

    # --- WAF -----------------------------------------------------------------------------------

    def _web_acl(self) -> Wafv2WebAcl:
        """Regional web ACL on the stage: per-IP rate limit, body size, AWS managed rule groups."""

        def visibility(metric: str) -> Wafv2WebAclRuleVisibilityConfig:
            return Wafv2WebAclRuleVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            )

        block = Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock())
        managed_groups_apply = Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone())
        rules = [
            Wafv2WebAclRule(
                name="rate-limit-per-ip",
                priority=0,
                action=block,
                statement={
                    "rate_based_statement": {
                        "limit": self.config.waf_rate_limit,
                        "aggregate_key_type": "IP",
                        "evaluation_window_sec": 300,
                    }
                },
                visibility_config=visibility("rate-limit-per-ip"),
            ),
            Wafv2WebAclRule(
                # The validation Lambda's limit, enforced before the request costs anything.
                name="body-size-limit",
                priority=1,
                action=block,
                statement={
                    "size_constraint_statement": {
                        "comparison_operator": "GT",
                        "size": MAX_BODY_BYTES,
                        # Bodies beyond the inspection limit (16 KB for API Gateway) count as too big.
                        "field_to_match": {"body": {"oversize_handling": "MATCH"}},
                        "text_transformation": [{"priority": 0, "type": "NONE"}],
                    }
                },
                visibility_config=visibility("body-size-limit"),
            ),
            Wafv2WebAclRule(
                name="aws-common-rule-set",
                priority=2,
                override_action=managed_groups_apply,
                statement={
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesCommonRuleSet",
                        # Its 8 KB body rule would contradict the API's 16 KiB contract; the
                        # body-size-limit rule above enforces the contract instead.
                        "rule_action_override": [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}],
                    }
                },
                visibility_config=visibility("aws-common-rule-set"),
            ),
            Wafv2WebAclRule(
                name="aws-known-bad-inputs",
                priority=3,
                override_action=managed_groups_apply,
                statement={
                    "managed_rule_group_statement": {
                        "vendor_name": "AWS",
                        "name": "AWSManagedRulesKnownBadInputsRuleSet",
                    }
                },
                visibility_config=visibility("aws-known-bad-inputs"),
            ),
        ]
        acl = Wafv2WebAcl(
            self,
            "web-acl",
            name=self.api_name,
            description=f"Payments API stage {STAGE_NAME} in {self.region}",
            scope="REGIONAL",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            association_config=Wafv2WebAclAssociationConfig(
                request_body=[
                    Wafv2WebAclAssociationConfigRequestBody(
                        api_gateway=Wafv2WebAclAssociationConfigRequestBodyApiGateway(
                            default_size_inspection_limit="KB_16"
                        )
                    )
                ]
            ),
            rule=rules,
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=self.api_name, sampled_requests_enabled=True
            ),
        )
        Wafv2WebAclAssociation(self, "web-acl-association", resource_arn=self.stage.arn, web_acl_arn=acl.arn)

        # WAF requires the "aws-waf-logs-" prefix. Only blocked and counted requests are kept:
        # they answer "why was this merchant refused", the access log has everything else.
        self.waf_log_group = CloudwatchLogGroup(
            self,
            "waf-log-group",
            name=f"aws-waf-logs-{self.api_name}",
            retention_in_days=self.config.log_retention_days,
            kms_key_id=self.compute.data.key_arn,
        )
        Wafv2WebAclLoggingConfiguration(
            self,
            "web-acl-logging",
            resource_arn=acl.arn,
            log_destination_configs=[self.waf_log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=header)
                )
                for header in REDACTED_HEADERS
            ],
            logging_filter=Wafv2WebAclLoggingConfigurationLoggingFilter(
                default_behavior="DROP",
                filter=[
                    Wafv2WebAclLoggingConfigurationLoggingFilterFilter(
                        behavior="KEEP",
                        requirement="MEETS_ANY",
                        condition=[
                            Wafv2WebAclLoggingConfigurationLoggingFilterFilterCondition(
                                action_condition=Wafv2WebAclLoggingConfigurationLoggingFilterFilterConditionActionCondition(
                                    action=action
                                )
                            )
                            for action in ("BLOCK", "COUNT")
                        ],
                    )
                ],
            ),
        )
        return acl

    # --- health and DNS ------------------------------------------------------------------------

    def _api_alarms(self) -> dict[str, CloudwatchMetricAlarm]:
        """Alarms that steer DNS: per payment route, 5xx rate and average latency, plain statistics.

        Method-level metrics (dimensions ``ApiName``, ``Stage``, ``Resource``, ``Method``; the
        stage's ``*/*`` method settings turn them on) of each route in :data:`PAYMENT_ROUTES`, so
        only what this region answers on its payment routes counts: not ``/health``, and never a
        4xx (bad input, WAF blocks, throttling, a standby's refusal). Route 53 health checks
        accept one metric per alarm, neither metric math nor percentiles, hence one alarm per
        route and statistic: ``5XXError`` Average (the route's fraction of 5xx answers) and
        ``Latency`` Average; the observability layer adds the p99 alarm for humans. Missing data
        is not breaching: a route without traffic (the standby) is not down; the HTTPS health
        check covers a dead region.
        """
        topic_arn = self.compute.alert_topic.arn
        period, periods = self.config.alarm_period_seconds, self.config.alarm_evaluation_periods
        specs = {
            "5xx_rate": (
                "5XXError",
                self.config.api_5xx_rate_threshold,
                f"More than {self.config.api_5xx_rate_threshold:.1%} of requests answered 5xx",
            ),
            "latency": (
                "Latency",
                self.config.api_latency_threshold_ms,
                f"Average latency above {self.config.api_latency_threshold_ms} ms",
            ),
        }
        alarms: dict[str, CloudwatchMetricAlarm] = {}
        for route in PAYMENT_ROUTES:
            dimensions = {"ApiName": self.api_name, "Stage": STAGE_NAME, "Resource": route.path, "Method": route.method}
            for kind, (metric, threshold, what) in specs.items():
                key = f"{kind}_{route.key}"
                slug = f"{kind}-{route.key}".replace("_", "-")
                alarms[key] = CloudwatchMetricAlarm(
                    self,
                    f"alarm-{slug}",
                    alarm_name=self.name(f"payments-api-{slug}"),
                    alarm_description=(
                        f"{what} on {route.method} {route.path} for {periods} x {period} s in {self.region}. "
                        "Steers DNS: while in ALARM, Route 53 counts this region unhealthy."
                    ),
                    namespace="AWS/ApiGateway",
                    metric_name=metric,
                    dimensions=dimensions,
                    statistic="Average",
                    period=period,
                    evaluation_periods=periods,
                    datapoints_to_alarm=periods,
                    threshold=threshold,
                    comparison_operator="GreaterThanThreshold",
                    treat_missing_data="notBreaching",
                    alarm_actions=[topic_arn],
                    ok_actions=[topic_arn],
                )
        return alarms

    def _health_checks(self) -> tuple[Route53HealthCheck, Route53HealthCheck]:
        """HTTPS check of /health, one check per API alarm, and the calculated check over all of them."""
        code = REGION_CODES[self.region]
        https = Route53HealthCheck(
            self,
            "https-health-check",
            type="HTTPS",
            fqdn=self.regional_host,
            port=443,
            resource_path=HEALTH_PATH,
            request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
            failure_threshold=self.config.health_check_failure_threshold,
            measure_latency=True,
            enable_sni=True,
            tags={"Name": self.name(f"api-https-{code}")},
            # Probe only once the name resolves and reaches the stage, or the new region starts unhealthy.
            depends_on=[self.regional_record, *self.base_path_mappings],
        )
        alarm_checks = [
            Route53HealthCheck(
                self,
                f"alarm-health-check-{key.replace('_', '-')}",
                type="CLOUDWATCH_METRIC",
                cloudwatch_alarm_name=alarm.alarm_name,
                cloudwatch_alarm_region=self.region,
                # At creation the alarm has no data yet: keep the last (initially healthy) status.
                insufficient_data_health_status="LastKnownStatus",
                tags={"Name": self.name(f"api-{key.replace('_', '-')}-{code}")},
            )
            for key, alarm in self.api_alarms.items()
        ]
        children = [https, *alarm_checks]
        calculated = Route53HealthCheck(
            self,
            "region-health-check",
            type="CALCULATED",
            child_healthchecks=[child.id for child in children],
            # Healthy only while every child is.
            child_health_threshold=len(children),
            tags={"Name": self.name(f"api-region-{code}")},
        )
        return https, calculated

    def _regional_record(self) -> Route53Record:
        """``api-<region>.<zone>``: a plain alias to this region's own custom domain."""
        regional = self.domains["regional"]
        return Route53Record(
            self,
            "regional-record",
            zone_id=self.zone.zone.zone_id,
            name=self.regional_host,
            type="A",
            alias=Route53RecordAlias(
                name=regional.regional_domain_name, zone_id=regional.regional_zone_id, evaluate_target_health=False
            ),
        )

    def _failover_record(self) -> Route53Record:
        """The region's half of the ``api.<zone>`` failover pair, healthy while its calculated check is."""
        client = self.domains["client"]
        return Route53Record(
            self,
            "failover-record",
            zone_id=self.zone.zone.zone_id,
            name=self.client_host,
            type="A",
            set_identifier=self.region,
            failover_routing_policy=Route53RecordFailoverRoutingPolicy(type=self.failover_role),
            health_check_id=self.region_health_check.id,
            alias=Route53RecordAlias(
                name=client.regional_domain_name, zone_id=client.regional_zone_id, evaluate_target_health=True
            ),
        )

    def _outputs(self) -> None:
        timings = failover_timings(self.config)
        TerraformOutput(self, "client_url", value=self.client_url, description="What merchants call (failover)")
        TerraformOutput(self, "regional_url", value=self.regional_url, description="This region, directly")
        TerraformOutput(self, "failover_role", value=self.failover_role)
        TerraformOutput(self, "rest_api_id", value=self.rest_api_id)
        TerraformOutput(self, "https_health_check_id", value=self.https_health_check.id)
        TerraformOutput(self, "region_health_check_id", value=self.region_health_check.id)
        TerraformOutput(
            self,
            "failover_worst_case_seconds",
            value={"https_health_check": timings.https_worst_case, "api_alarms": timings.alarm_worst_case},
        )
