"""A key works in both regions once replicated, and a revoked one stops working in both.

moto has no global tables: ``replicate`` copies the merchants table from the primary (where
tools/merchants.py writes) to the secondary, as global-table replication would.
"""

from __future__ import annotations

from tests.lambdas.authorizer.conftest import allowed, authorizer_event, issue_key, revoke_key
from tests.lambdas.conftest import MERCHANTS, PRIMARY, SECONDARY, Aws, FakeContext, load_handler, replicate


def decide(region: str, token: str) -> dict:
    return load_handler("authorizer", region).handler(authorizer_event(f"Bearer {token}", region), FakeContext())


def test_a_key_written_in_the_primary_is_accepted_by_the_secondary_once_replicated(aws: Aws) -> None:
    key = issue_key(aws, "merchant-a", PRIMARY)
    assert allowed(decide(PRIMARY, key.token))
    # Not replicated yet: the secondary's replica does not know the key.
    assert not allowed(decide(SECONDARY, key.token))
    assert replicate(aws, MERCHANTS, PRIMARY, SECONDARY) == 1
    answer = decide(SECONDARY, key.token)
    assert allowed(answer)
    assert answer["context"] == {"merchant_id": "merchant-a", "key_id": key.key_id}
    assert all(f":execute-api:{SECONDARY}:" in r for r in answer["policyDocument"]["Statement"][0]["Resource"])


def test_a_key_revoked_in_the_primary_is_refused_by_the_secondary_once_replicated(aws: Aws) -> None:
    key = issue_key(aws, "merchant-a", PRIMARY)
    replicate(aws, MERCHANTS, PRIMARY, SECONDARY)
    assert allowed(decide(SECONDARY, key.token))
    revoke_key(aws, key, PRIMARY)
    assert not allowed(decide(PRIMARY, key.token))
    replicate(aws, MERCHANTS, PRIMARY, SECONDARY)
    assert not allowed(decide(SECONDARY, key.token))


def test_a_rotated_merchant_has_two_valid_keys_in_both_regions_until_the_old_one_is_revoked(aws: Aws) -> None:
    old = issue_key(aws, "merchant-a", PRIMARY)
    new = issue_key(aws, "merchant-a", PRIMARY)
    replicate(aws, MERCHANTS, PRIMARY, SECONDARY)
    for region in (PRIMARY, SECONDARY):
        assert allowed(decide(region, old.token))
        assert allowed(decide(region, new.token))
    revoke_key(aws, old, PRIMARY)
    replicate(aws, MERCHANTS, PRIMARY, SECONDARY)
    for region in (PRIMARY, SECONDARY):
        assert not allowed(decide(region, old.token))
        assert allowed(decide(region, new.token))
