"""Config: defaults from cdktf.json, environment overrides, one clear error per bad value."""

from __future__ import annotations

import json

import pytest

from layers.base import BackendSettings
from layers.config import (
    CDKTF_JSON,
    CERTIFICATE_DOMAIN_LIMIT,
    MAX_SUFFIX_LENGTH,
    Config,
    ConfigError,
    load_config,
    promotion_worst_case_seconds,
    read_context,
)

CONTEXT = read_context(environ={})


def test_defaults_come_from_cdktf_json_context() -> None:
    config = load_config(context=CONTEXT, environ={})
    context = json.loads(CDKTF_JSON.read_text())["context"]
    assert config.environment_suffix == context["environmentSuffix"] == "dev"
    assert config.regions == ("us-east-1", "us-east-2")
    assert config.witness_region == context["witnessRegion"] == "us-west-2"
    assert config.alert_emails == tuple(context["alertEmails"])


def test_environment_variables_override_context() -> None:
    config = load_config(
        context=CONTEXT,
        environ={
            "ENVIRONMENT_SUFFIX": "pr-42",
            "ALERT_EMAILS": "a@example.com, b@example.org",
            "WITNESS_REGION": "ca-central-1",
        },
    )
    assert config.environment_suffix == "pr-42"
    assert config.witness_region == "ca-central-1"
    assert config.alert_emails == ("a@example.com", "b@example.org")


def test_cli_context_overrides_file_context() -> None:
    config = load_config(environ={"CDKTF_CONTEXT_JSON": json.dumps({"environmentSuffix": "fromcli"})})
    assert config.environment_suffix == "fromcli"


@pytest.mark.parametrize(
    ("env", "key", "value", "rule"),
    [
        ({"ENVIRONMENT_SUFFIX": "Dev"}, "ENVIRONMENT_SUFFIX", "Dev", "lowercase"),
        ({"ENVIRONMENT_SUFFIX": "dev_1"}, "ENVIRONMENT_SUFFIX", "dev_1", "lowercase"),
        ({"ENVIRONMENT_SUFFIX": "-dev"}, "ENVIRONMENT_SUFFIX", "-dev", "starting and ending"),
        (
            {"ENVIRONMENT_SUFFIX": "a" * (MAX_SUFFIX_LENGTH + 1)},
            "ENVIRONMENT_SUFFIX",
            "a" * (MAX_SUFFIX_LENGTH + 1),
            f"at most {MAX_SUFFIX_LENGTH}",
        ),
        ({"PRIMARY_REGION": "us-east-9"}, "PRIMARY_REGION", "us-east-9", "must be one of"),
        ({"SECONDARY_REGION": "mars-1"}, "SECONDARY_REGION", "mars-1", "must be one of"),
        ({"SECONDARY_REGION": "us-east-1"}, "SECONDARY_REGION", "us-east-1", "differ from the primary"),
        ({"WITNESS_REGION": "mars-1"}, "WITNESS_REGION", "mars-1", "must be one of"),
        ({"WITNESS_REGION": "us-east-1"}, "WITNESS_REGION", "us-east-1", "differ from the primary and the secondary"),
        ({"WITNESS_REGION": "us-east-2"}, "WITNESS_REGION", "us-east-2", "differ from the primary and the secondary"),
        ({"DOMAIN_NAME": "not a domain"}, "DOMAIN_NAME", "not a domain", "DNS name"),
        ({"DOMAIN_NAME": "Payments.Example.com"}, "DOMAIN_NAME", "Payments.Example.com", "lowercase DNS name"),
        ({"ALERT_EMAILS": "oncall-at-example.com"}, "ALERT_EMAILS", "oncall-at-example.com", "e-mail address"),
        ({"ALERT_EMAILS": " , "}, "ALERT_EMAILS", [], "at least one"),
        ({"VPC_CIDRS": "{nope"}, "VPC_CIDRS", "{nope", "JSON object"),
        (
            {"VPC_CIDRS": '{"us-east-1": "10.10.0.0/16", "us-east-2": "10.10.128.0/17"}'},
            "VPC_CIDRS",
            {"us-east-1": "10.10.0.0/16", "us-east-2": "10.10.128.0/17"},
            "must not overlap",
        ),
        ({"VPC_CIDRS": '{"us-east-1": "10.10.0.0/16"}'}, "VPC_CIDRS", {"us-east-1": "10.10.0.0/16"}, "us-east-2"),
        (
            {"VPC_CIDRS": '{"us-east-1": "8.8.0.0/16", "us-east-2": "10.20.0.0/16"}'},
            "VPC_CIDRS",
            "8.8.0.0/16",
            "private IPv4",
        ),
        (
            {"VPC_CIDRS": '{"us-east-1": "10.10.0.1/16", "us-east-2": "10.20.0.0/16"}'},
            "VPC_CIDRS",
            "10.10.0.1/16",
            "IPv4 network",
        ),
        ({"LAMBDA_RESERVED_CONCURRENCY": "0"}, "LAMBDA_RESERVED_CONCURRENCY", 0, "between 1 and 1000"),
        ({"LAMBDA_RESERVED_CONCURRENCY": "ten"}, "LAMBDA_RESERVED_CONCURRENCY", "ten", "whole number"),
        ({"LOG_RETENTION_DAYS": "10"}, "LOG_RETENTION_DAYS", 10, "CloudWatch Logs values"),
        ({"HEALTH_CHECK_FAILURE_THRESHOLD": "11"}, "HEALTH_CHECK_FAILURE_THRESHOLD", 11, "1 to 10"),
        ({"LEASE_SECONDS": "1000"}, "LEASE_SECONDS", 1000, "between 60 and 900"),
        ({"LEASE_SECONDS": "120"}, "LEASE_SECONDS", 120, "two renewal intervals"),
        (
            {"LEASE_SECONDS": "200", "PROBE_INTERVAL_MINUTES": "2", "HEARTBEAT_STALE_SECONDS": "400"},
            "LEASE_SECONDS",
            200,
            "(250 s)",
        ),
        ({"LEASE_SAFETY_MARGIN_SECONDS": "5"}, "LEASE_SAFETY_MARGIN_SECONDS", 5, "between 10 and 600"),
        ({"LEASE_SAFETY_MARGIN_SECONDS": "39"}, "LEASE_SAFETY_MARGIN_SECONDS", 39, "longest function timeout"),
        (
            {"LEASE_SAFETY_MARGIN_SECONDS": "60", "PROCESSING_TIMEOUT_SECONDS": "60"},
            "LEASE_SAFETY_MARGIN_SECONDS",
            60,
            "(70 s)",
        ),
        ({"PENDING_SWEEP_AGE_SECONDS": "30"}, "PENDING_SWEEP_AGE_SECONDS", 30, "between a minute and a day"),
        ({"PENDING_ALARM_AGE_SECONDS": "100"}, "PENDING_ALARM_AGE_SECONDS", 100, "pendingSweepAgeSeconds"),
    ],
)
def test_each_bad_value_gives_its_own_error(env: dict[str, str], key: str, value: object, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(context=CONTEXT, environ=env)
    assert caught.value.key == key
    assert caught.value.value == value
    assert rule in caught.value.rule
    assert key in str(caught.value)
    assert rule in str(caught.value)


def test_bad_context_value_names_the_context_key() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(context={**CONTEXT, "primaryRegion": "nowhere-1"}, environ={})
    assert caught.value.key == "primaryRegion"


def test_longest_suffix_is_accepted_and_one_more_is_not() -> None:
    assert load_config(context=CONTEXT, environ={"ENVIRONMENT_SUFFIX": "a" * MAX_SUFFIX_LENGTH})
    with pytest.raises(ConfigError):
        load_config(context=CONTEXT, environ={"ENVIRONMENT_SUFFIX": "a" * (MAX_SUFFIX_LENGTH + 1)})


def test_config_is_immutable() -> None:
    config = load_config(context=CONTEXT, environ={})
    with pytest.raises(AttributeError):
        config.environment_suffix = "prod"  # type: ignore[misc]
    assert isinstance(config, Config)


def domain_of_length(length: int) -> str:
    """A valid DNS name of exactly ``length`` characters (labels of at most 63)."""
    labels, left = [], length - len(".com")
    while left > 0:
        label = min(left, 63)
        if left - label == 1:  # never leave a lone dot
            label -= 1
        labels.append("d" * label)
        left -= label + 1
    name = ".".join(labels) + ".com"
    assert len(name) == length, name
    return name


def test_certificate_name_of_64_characters_is_accepted_and_65_is_refused() -> None:
    suffix = "a" * MAX_SUFFIX_LENGTH
    # api-<region>.<suffix>.<domain>: the longer region name (us-east-1 and us-east-2 are equal) decides.
    fixed = len(f"api-us-east-1.{suffix}.")
    longest = domain_of_length(CERTIFICATE_DOMAIN_LIMIT - fixed)
    config = load_config(context=CONTEXT, environ={"ENVIRONMENT_SUFFIX": suffix, "DOMAIN_NAME": longest})
    assert max(len(config.regional_host(region)) for region in config.regions) == CERTIFICATE_DOMAIN_LIMIT
    with pytest.raises(ConfigError) as caught:
        load_config(context=CONTEXT, environ={"ENVIRONMENT_SUFFIX": suffix, "DOMAIN_NAME": "d" + longest})
    assert caught.value.key == "DOMAIN_NAME"
    assert "65 characters, ACM allows 64" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_200_character_domain_is_refused_for_the_certificate_not_accepted() -> None:
    with pytest.raises(ConfigError, match="ACM allows 64"):
        load_config(context=CONTEXT, environ={"DOMAIN_NAME": domain_of_length(200)})


def test_state_bucket_names_are_checked_against_the_s3_limit() -> None:
    settings = BackendSettings.load()
    settings.check_names("a" * MAX_SUFFIX_LENGTH)
    long = BackendSettings(**{**settings.__dict__, "bucket": "b" * 40})
    with pytest.raises(ConfigError, match="S3 allows 63"):
        long.check_names("a" * MAX_SUFFIX_LENGTH)


def test_default_promotion_fits_inside_the_dns_worst_case() -> None:
    """README: region-down promotion (290 s) next to the slowest DNS path (API alarm, 300 s)."""
    config = load_config(context=CONTEXT, environ={})
    dns_worst_case = config.alarm_period_seconds * config.alarm_evaluation_periods + 60 + 60
    assert promotion_worst_case_seconds(config) == 290
    assert promotion_worst_case_seconds(config) <= dns_worst_case


def test_readme_states_the_lease_keys_and_the_promotion_time() -> None:
    readme = (CDKTF_JSON.parent / "README.md").read_text()
    for key in ("leaseSeconds", "leaseSafetyMarginSeconds", "pendingSweepAgeSeconds", "pendingAlarmAgeSeconds"):
        assert f"`{key}`" in readme, key
    config = load_config(context=CONTEXT, environ={})
    assert f"**{promotion_worst_case_seconds(config)} s**" in readme
