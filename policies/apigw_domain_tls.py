"""CKV_PDR_7: every API Gateway custom domain uses TLS 1.2 and an ACM certificate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from _shared import ProjectResourceCheck, blocks, is_reference, value

TLS_POLICY = "TLS_1_2"
#: Attributes that upload a certificate into IAM instead of using ACM (renewal becomes a manual job).
UPLOADED_CERTIFICATE = ("certificate_body", "certificate_chain", "certificate_private_key")


def certificate_problems(attribute: str, arn: Any) -> Iterator[str]:
    """An ACM certificate ARN, or a reference to one."""
    if not arn:
        yield f"no {attribute}: the domain needs an ACM certificate"
    elif isinstance(arn, str) and not is_reference(arn) and ":acm:" not in arn:
        yield f"{attribute}={arn!r} is not an ACM certificate ARN"


class ApiGatewayDomainTls(ProjectResourceCheck):
    """``security_policy = TLS_1_2`` and an ACM certificate on REST (v1) and HTTP (v2) custom domains."""

    def __init__(self) -> None:
        super().__init__(
            id="CKV_PDR_7",
            name="Every API Gateway custom domain uses TLS_1_2 and an ACM certificate",
            why=(
                "Card data in transit needs TLS 1.2 or later (PCI DSS); ACM renews the certificate on "
                "its own, so a failover never lands on an expired certificate in the standby region."
            ),
            resources=("aws_api_gateway_domain_name", "aws_apigatewayv2_domain_name"),
        )

    def problems(self, conf: dict[str, Any], entity_type: str) -> Iterator[str]:
        """Wrong or missing TLS policy, or no ACM certificate."""
        if entity_type == "aws_apigatewayv2_domain_name":
            configurations = blocks(conf, "domain_name_configuration")
            if not configurations:
                yield "no domain_name_configuration"
            for configuration in configurations:
                policy = value(configuration, "security_policy")
                if policy != TLS_POLICY:
                    yield f"domain_name_configuration.security_policy={policy!r}, must be {TLS_POLICY}"
                yield from certificate_problems("certificate_arn", value(configuration, "certificate_arn"))
            return
        policy = value(conf, "security_policy")
        if policy != TLS_POLICY:
            yield f"security_policy={policy!r}, must be {TLS_POLICY} (set it: the default accepts TLS 1.0)"
        for attribute in UPLOADED_CERTIFICATE:
            if attribute in conf:
                yield f"{attribute} uploads a certificate to IAM: use an ACM certificate"
        arn_attribute = "regional_certificate_arn" if "regional_certificate_arn" in conf else "certificate_arn"
        yield from certificate_problems(arn_attribute, value(conf, arn_attribute))


check = ApiGatewayDomainTls()
