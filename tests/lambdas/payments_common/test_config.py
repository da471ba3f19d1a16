"""Settings from the environment: required variables, region pair, bounded numbers."""

from __future__ import annotations

import pytest
from payments_common.config import ConfigError, load

from tests.lambdas.conftest import function_env


def env(**overrides: str) -> dict[str, str]:
    base = function_env("failover_orchestrator", "us-east-2")
    base.update(overrides)
    return {k: v for k, v in base.items() if v != "<unset>"}


def test_loads_the_design_contract() -> None:
    settings = load(env())
    assert settings.region == "us-east-2"
    assert settings.peer_region == "us-east-1"
    assert settings.regions == ("us-east-1", "us-east-2")
    assert settings.heartbeat_stale_seconds == 180
    assert (settings.lease_seconds, settings.lease_safety_margin_seconds) == (130, 40)
    assert (settings.pending_sweep_age_seconds, settings.pending_alarm_age_seconds) == (120, 600)
    assert settings.require("alert_topic_arn").startswith("arn:aws:sns:us-east-2:")


@pytest.mark.parametrize("name", ["TRANSACTIONS_TABLE", "CONTROL_TABLE", "PRIMARY_REGION", "AWS_REGION"])
def test_missing_required_variable_is_named(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(env(**{name: "<unset>"}))


def test_region_must_be_one_of_the_pair() -> None:
    with pytest.raises(ConfigError, match="AWS_REGION"):
        load(env(AWS_REGION="eu-west-1"))


def test_regions_must_differ() -> None:
    with pytest.raises(ConfigError, match="SECONDARY_REGION"):
        load(env(SECONDARY_REGION="us-east-1", AWS_REGION="us-east-1"))


@pytest.mark.parametrize("value", ["30", "abc", "100000"])
def test_heartbeat_staleness_is_bounded(value: str) -> None:
    with pytest.raises(ConfigError, match="HEARTBEAT_STALE_SECONDS"):
        load(env(HEARTBEAT_STALE_SECONDS=value))


def test_optional_settings_can_be_required_by_a_function() -> None:
    settings = load(env(ALERT_TOPIC_ARN="<unset>", LEASE_SECONDS="<unset>"))
    assert settings.lease_seconds == 130
    with pytest.raises(ConfigError, match="ALERT_TOPIC_ARN"):
        settings.require("alert_topic_arn")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LEASE_SECONDS", "59"),
        ("LEASE_SECONDS", "901"),
        ("LEASE_SAFETY_MARGIN_SECONDS", "9"),
        ("PENDING_SWEEP_AGE_SECONDS", "10"),
        ("PENDING_ALARM_AGE_SECONDS", "x"),
    ],
)
def test_lease_and_sweeper_settings_are_bounded(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(env(**{name: value}))


def test_the_witness_is_a_third_region() -> None:
    settings = load(env())
    assert (settings.witness_region, settings.witness_table) == ("us-west-2", "payments-lease-witness-test")
    for region in ("us-east-1", "us-east-2"):
        with pytest.raises(ConfigError, match="WITNESS_REGION"):
            load(env(WITNESS_REGION=region))
