"""Every generated name ends with the suffix and, with the longest suffix, stays inside its AWS limit."""

from __future__ import annotations

from layers.config import ACM_VALIDATION_PREFIX_LENGTH, CERTIFICATE_DOMAIN_LIMIT, DNS_NAME_LIMIT
from tests.conftest import LONGEST_SUFFIX
from tests.synthesized import Synthesized

#: Attributes that hold a resource's name.
NAME_ATTRIBUTES = ("name", "name_prefix", "function_name", "bucket", "alarm_name", "dashboard_name", "layer_name")

#: (resource type, attribute) -> AWS limit on its length. A named resource type missing
#: here fails the test: look up its limit and add it.
NAME_LIMITS: dict[tuple[str, str], int] = {
    ("aws_s3_bucket", "bucket"): 63,
    ("aws_dynamodb_table", "name"): 255,
    ("aws_kms_alias", "name"): 256,
    ("aws_iam_role", "name"): 64,
    ("aws_iam_policy", "name"): 128,
    ("aws_iam_role_policy", "name"): 128,
    ("aws_lambda_function", "function_name"): 64,
    ("aws_lambda_layer_version", "layer_name"): 140,
    ("aws_sqs_queue", "name"): 80,
    ("aws_sns_topic", "name"): 256,
    ("aws_cloudwatch_log_group", "name"): 512,
    ("aws_cloudwatch_metric_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_composite_alarm", "alarm_name"): 255,
    ("aws_cloudwatch_dashboard", "dashboard_name"): 255,
    ("aws_cloudwatch_event_rule", "name"): 64,
    ("aws_security_group", "name"): 255,
    ("aws_api_gateway_rest_api", "name"): 1024,
    ("aws_api_gateway_model", "name"): 128,
    ("aws_api_gateway_request_validator", "name"): 128,
    # No documented limit: the request validator's 128 as a conservative bound.
    ("aws_api_gateway_authorizer", "name"): 128,
    ("aws_api_gateway_usage_plan", "name"): 128,
    ("aws_api_gateway_api_key", "name"): 1024,
    ("aws_wafv2_web_acl", "name"): 128,
    ("aws_flow_log", "name"): 255,
}

#: Attributes that are DNS names, not resource names: they follow the domain, not the suffix rule.
DNS_NAMES = {("aws_route53_zone", "name"), ("aws_route53_record", "name")}
#: Names scoped inside their parent resource that AWS restricts to letters and digits, so they cannot
#: carry "-<suffix>": an API Gateway model name is unique per REST API, which is already suffixed.
SCOPED_ALPHANUMERIC_NAMES = {("aws_api_gateway_model", "name")}


def named_values(app: Synthesized):
    for resource in app.resources():
        for attribute in NAME_ATTRIBUTES:
            value = resource.body.get(attribute)
            # A reference (``${...}``) names another resource: it is checked where that one is defined.
            if isinstance(value, str) and "${" not in value and (resource.type, attribute) not in DNS_NAMES:
                yield resource, attribute, value


def test_every_name_stays_inside_its_aws_limit_with_the_longest_suffix(synth_longest: Synthesized) -> None:
    checked = 0
    for resource, attribute, value in named_values(synth_longest):
        limit = NAME_LIMITS.get((resource.type, attribute))
        assert limit is not None, f"{resource.address}.{attribute}: add its AWS name limit to NAME_LIMITS"
        assert len(value) <= limit, f"{resource.address}.{attribute}={value!r} is {len(value)} > {limit}"
        checked += 1
    assert checked > 0


def test_every_name_ends_with_the_suffix(synth_longest: Synthesized) -> None:
    names = list(named_values(synth_longest))
    assert names
    for resource, attribute, value in names:
        if (resource.type, attribute) in SCOPED_ALPHANUMERIC_NAMES:
            assert value.isalnum(), f"{resource.address}.{attribute}={value!r} must be alphanumeric"
            continue
        assert value.endswith(f"-{LONGEST_SUFFIX}"), f"{resource.address}.{attribute}={value!r}"


def test_certificate_and_record_names_stay_inside_acm_and_dns_limits(synth_longest: Synthesized) -> None:
    certificates = list(synth_longest.resources("aws_acm_certificate"))
    assert certificates
    for certificate in certificates:
        assert len(certificate.body["domain_name"]) <= CERTIFICATE_DOMAIN_LIMIT, certificate.address
        for name in certificate.body.get("subject_alternative_names", []):
            assert len(name) + ACM_VALIDATION_PREFIX_LENGTH <= DNS_NAME_LIMIT, name
