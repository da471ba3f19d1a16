"""The drill's deployed target, where no deployment is needed: clear errors, the story, refusals.

The drill on a real deployment runs in ``tests/deploy/test_deploy_local.py``.
"""

from __future__ import annotations

import pytest

from tools.drill.deployed import Deployed, denied, story
from tools.drill.synth import Topology
from tools.drill.world import DrillSetupError
from tools.emulator import Emulator


def test_an_emulator_without_the_deployment_is_refused_with_what_to_do(emulator: Emulator, topology: Topology) -> None:
    emulator.reset()
    with pytest.raises(DrillSetupError, match=r"is not deployed in us-east-1 .*`make deploy-local KEEP=1` first"):
        Deployed.read(emulator.endpoint, topology)


def test_the_story_is_a_payment_sent_to_the_failing_region_and_finished_in_the_other() -> None:
    carried = {
        "payment_id": "p-1",
        "idempotency_key": "k-1",
        "first_sent_to": "us-east-1",
        "first_sent_s": 61.0,
        "first_answer": "connection",
        "accepted_by": "us-east-2",
        "accepted_s": 182.0,
        "attempts": 14,
        "finished_in": "us-east-2",
        "finished_s": 182.0,
        "status": "PROCESSED",
    }
    figures = {
        "across_regions": [{**carried, "payment_id": "p-0", "first_sent_to": "us-east-2"}, carried],
        "events": [{"t": 60.0, "what": "primary region down"}, {"t": 60.0, "what": "orchestrator in x: standby"}],
    }
    told = story(figures, "us-east-1")
    assert told.startswith(
        "payment p-1 (Idempotency-Key k-1): sent to us-east-1 at 61 s (connection), accepted by us-east-2 at "
        "182 s with the same key (14 attempts), PROCESSED in us-east-2 at 182 s (1 payments like it)"
    ), told
    assert told.endswith("the drill's events: 60 s primary region down"), told
    assert story({"across_regions": [], "events": []}, "us-east-1").startswith("no payment first sent to us-east-1")


def test_only_refusals_of_the_functions_roles_count() -> None:
    role = "arn:aws:sts::123456789012:assumed-role/payment-validation-use1-dev/drill-payment_validation"
    harness = "arn:aws:iam::123456789012:user/drill-harness-dev"
    decisions = [
        {"principal": role, "action": "sqs:SendMessage", "resource": "q", "allowed": False},
        {"principal": role, "action": "dynamodb:PutItem", "resource": "t", "allowed": True},
        {"principal": harness, "action": "sqs:PurgeQueue", "resource": "q", "allowed": False},
    ]
    assert denied(decisions, {"payment-validation-use1-dev"}) == decisions[:1]
