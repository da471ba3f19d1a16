"""The shared session: boto3's, with a data loader that answers as botocore's does without the full scan."""

from __future__ import annotations

import subprocess
import sys

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader as BotocoreLoader
from payments_common import clients

from tests.lambdas.conftest import LAMBDAS


@pytest.mark.parametrize("type_name", ["service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"])
def test_the_loader_knows_exactly_the_services_botocore_knows(type_name: str) -> None:
    ours, botocores = clients.Loader(), BotocoreLoader()
    expected = botocores.list_available_services(type_name)
    known = ours.list_available_services(type_name)
    assert "dynamodb" in expected
    assert all(name in known for name in expected)
    assert "no-such-service" not in known
    assert 42 not in known
    assert sorted(known) == expected
    assert len(known) == len(expected)


def test_an_unknown_service_is_still_botocores_error_naming_the_known_ones() -> None:
    session = botocore.session.Session()
    session.register_component("data_loader", clients.Loader())
    with pytest.raises(UnknownServiceError) as raised:
        session.create_client("dynamodbb", region_name="us-east-1")
    assert "dynamodb" in str(raised.value)


def test_a_client_has_the_settings_and_the_session_uses_the_loader() -> None:
    code = (
        "from payments_common import clients\n"
        "c = clients.client('dynamodb', region='us-east-2', max_attempts=2, read_timeout=2.0)\n"
        "print(c.meta.region_name, c.meta.config.retries['total_max_attempts'], c.meta.config.read_timeout,"
        " type(clients.session()._session.get_component('data_loader')).__name__)\n"
    )
    env = {"PYTHONPATH": str(LAMBDAS), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # botocore counts ``max_attempts`` as retries: 2 retries, 3 attempts in all (as with boto3).
    assert done.stdout.split() == ["us-east-2", "3", "2.0", "Loader"]
