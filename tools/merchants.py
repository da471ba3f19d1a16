"""Merchant API keys for operators: ``python -m tools.merchants create | rotate | revoke | list``.

Writes in the primary region's ``payments-merchants-<suffix>`` table (a global table: the
secondary's replica follows within about a second); the authorizer of each region reads its own
replica. A new key is printed once and never again: only its salted HMAC-SHA256 is stored.

    python -m tools.merchants create --merchant acme          # first key of a merchant
    python -m tools.merchants rotate --merchant acme          # one more key; the old ones stay valid
    python -m tools.merchants revoke --key-id 0123456789abcdef
    python -m tools.merchants list [--merchant acme]          # never shows a secret or a hash

Target: AWS with the operator's credentials, or the local emulator: ``AWS_ENDPOINT_URL`` when set,
else ``--target emulator`` uses the one ``make deploy-local KEEP=1`` left running
(``.state/emulator.json``). Bad arguments: one line on stderr, exit 2; AWS errors: one line, exit 1.
The key format and hash are ``lambdas/payments_common/credentials.py``, the authorizer's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.payments_common import credentials
from layers.config import ConfigError, load_config
from tools import emulator

#: Base name of the table (``layers/data.py``, key ``merchants``).
TABLE_BASE = "payments-merchants"
#: A revoked key's record stays listable this long, then DynamoDB's TTL removes it.
REVOKED_RECORD_DAYS = 90
KEY_ID_RE = re.compile(rf"^[0-9a-f]{{{credentials.KEY_ID_HEX_DIGITS}}}$")
#: Attributes ``list`` reads: never ``salt`` or ``secret_hash``.
LISTED = ("key_id", "merchant_id", "status", "created_at", "revoked_at")


class UsageError(Exception):
    """Bad arguments: one line, exit 2."""


class OperationError(Exception):
    """The operation failed (AWS error, unknown key, ...): one line, exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    """The command line."""
    root = _Parser(prog="python -m tools.merchants", description="Manage merchant API keys (primary region).")
    root.add_argument("--target", choices=("aws", "emulator"), help="default: aws, or AWS_ENDPOINT_URL when set")
    root.add_argument("--suffix", help="environment suffix (default: the config's environmentSuffix)")
    root.add_argument("--json", action="store_true", help="machine-readable output")
    commands = root.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_ in (("create", "first key of a new merchant"), ("rotate", "another key for a merchant")):
        command = commands.add_parser(name, help=help_)
        command.add_argument("--merchant", required=True, help="merchant id (letters, digits, - and _)")
    revoke = commands.add_parser("revoke", help="revoke one key (both regions, within cache TTL + replication)")
    revoke.add_argument("--key-id", required=True, help="16 hex digits, as `list` shows")
    listing = commands.add_parser("list", help="keys and their status, never a secret")
    listing.add_argument("--merchant", help="only this merchant's keys")
    return root


def now() -> str:
    """ISO-8601 UTC, seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_merchant(merchant: str | None) -> None:
    """Refuse a merchant id the API would refuse."""
    if merchant is not None and not credentials.MERCHANT_ID_RE.fullmatch(merchant):
        raise UsageError(f"--merchant {merchant!r}: 1-64 letters, digits, '-' or '_', starting with a letter or digit")


class Keys:
    """The merchants table of one deployment, in its primary region."""

    def __init__(self, client: Any, table: str, suffix: str) -> None:
        self.client, self.table, self.suffix = client, table, suffix

    def keys_of(self, merchant: str | None = None) -> list[dict[str, str]]:
        """Every key record (or one merchant's), without secrets, oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": ", ".join(f"#{i}" for i in range(len(LISTED))),
            "ExpressionAttributeNames": {f"#{i}": name for i, name in enumerate(LISTED)},
            "ConsistentRead": True,
        }
        if merchant is not None:
            kwargs["FilterExpression"] = "#1 = :m"
            kwargs["ExpressionAttributeValues"] = {":m": {"S": merchant}}
        records: list[dict[str, str]] = []
        for page in self.client.get_paginator("scan").paginate(**kwargs):
            for item in page["Items"]:
                records.append({name: item[name]["S"] for name in LISTED if "S" in item.get(name, {})})
        return sorted(records, key=lambda r: (r.get("merchant_id", ""), r.get("created_at", ""), r["key_id"]))

    def issue(self, merchant: str) -> credentials.ApiKey:
        """Write a new active key for ``merchant``; the secret exists only in the return value."""
        key = credentials.new_key(self.suffix)
        self.client.put_item(
            TableName=self.table,
            Item=credentials.key_item(merchant, key, now()),
            ConditionExpression="attribute_not_exists(key_id)",
        )
        return key

    def revoke(self, key_id: str) -> dict[str, str]:
        """Mark the key revoked (only an active one); its record expires after :data:`REVOKED_RECORD_DAYS`."""
        stamp = now()
        expires = int(datetime.now(UTC).timestamp()) + REVOKED_RECORD_DAYS * 86400
        try:
            answer = self.client.update_item(
                TableName=self.table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression="SET #s = :revoked, revoked_at = :at, expires_at = :exp",
                ConditionExpression="#s = :active",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":revoked": {"S": credentials.REVOKED},
                    ":active": {"S": credentials.ACTIVE},
                    ":at": {"S": stamp},
                    ":exp": {"N": str(expires)},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise OperationError(f"key {key_id} is unknown or already revoked") from None
            raise
        return {name: answer["Attributes"][name]["S"] for name in LISTED if name in answer["Attributes"]}


def client_for(target: str | None, region: str) -> tuple[Any, str]:
    """A DynamoDB client of ``region`` and a description of where it points."""
    config = BotoConfig(retries={"mode": "standard", "max_attempts": 4}, connect_timeout=5, read_timeout=10)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if target == "aws" and endpoint:
        raise UsageError(f"--target aws with AWS_ENDPOINT_URL={endpoint}: unset it to reach AWS")
    if target == "emulator" or (target is None and endpoint):
        if target == "emulator":
            record = emulator.remembered()
            if record is None and not endpoint:
                raise OperationError("no emulator is running: run `make deploy-local KEEP=1` or set AWS_ENDPOINT_URL")
            endpoint = f"http://{emulator.HOST}:{record['port']}" if record else endpoint
        env = emulator.client_env(str(endpoint), region)
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]
        )
        return session.client(
            "dynamodb", region_name=region, endpoint_url=endpoint, config=config
        ), f"emulator {endpoint}"
    return boto3.session.Session().client("dynamodb", region_name=region, config=config), f"AWS {region}"


def validate(args: argparse.Namespace) -> None:
    """Argument checks argparse cannot do (raise :class:`UsageError`)."""
    check_merchant(getattr(args, "merchant", None))
    key_id = getattr(args, "key_id", None)
    if key_id is not None and not KEY_ID_RE.fullmatch(key_id):
        raise UsageError(f"--key-id {key_id!r}: 16 lowercase hex digits, as `list` shows")


def run(args: argparse.Namespace, keys: Keys, out: Any) -> None:
    """One command against ``keys``; output to ``out``."""
    if args.command in ("create", "rotate"):
        existing = [r for r in keys.keys_of(args.merchant) if r.get("status") == credentials.ACTIVE]
        if args.command == "create" and existing:
            raise OperationError(f"merchant {args.merchant} already has active keys: use rotate")
        if args.command == "rotate" and not existing:
            raise OperationError(f"merchant {args.merchant} has no active key: use create")
        key = keys.issue(args.merchant)
        still_valid = [r["key_id"] for r in existing]
        if args.json:
            document = {"merchant_id": args.merchant, "key_id": key.key_id, "api_key": key.token}
            print(json.dumps({**document, "still_valid": still_valid}), file=out)
            return
        print(f"merchant {args.merchant}: new key {key.key_id}", file=out)
        print(f"API key (shown once, store it now): {key.token}", file=out)
        print("send it as: Authorization: Bearer <API key>", file=out)
        if still_valid:
            print(f"still valid until revoked: {', '.join(still_valid)}", file=out)
    elif args.command == "revoke":
        record = keys.revoke(args.key_id)
        if args.json:
            print(json.dumps(record), file=out)
            return
        print(
            f"key {args.key_id} of merchant {record.get('merchant_id')} revoked at {record.get('revoked_at')}: "
            "refused in both regions within the authorizer cache TTL plus replication",
            file=out,
        )
    else:
        records = keys.keys_of(args.merchant)
        if args.json:
            print(json.dumps(records), file=out)
            return
        for r in records:
            revoked = f" revoked {r['revoked_at']}" if "revoked_at" in r else ""
            merchant, status = r.get("merchant_id", "?"), r.get("status", "?")
            print(f"{r['key_id']}  {merchant:<24} {status:<8} created {r.get('created_at', '?')}{revoked}", file=out)


def main(argv: Sequence[str] | None = None, out: Any = None, client: Any = None) -> int:
    """Entry point; ``client`` replaces the DynamoDB client (tests)."""
    out = out or sys.stdout
    try:
        args = parser().parse_args(argv)
        validate(args)
        config = load_config(environ={**os.environ, **({"ENVIRONMENT_SUFFIX": args.suffix} if args.suffix else {})})
        suffix = config.environment_suffix
        where = "injected client"
        if client is None:
            client, where = client_for(args.target, config.primary_region)
        keys = Keys(client, f"{TABLE_BASE}-{suffix}", suffix)
        print(f"{keys.table} in {where}", file=sys.stderr)
        try:
            run(args, keys, out)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise OperationError(
                    f"no table {keys.table} in {where}: is `{suffix}` deployed there? (--suffix, --target)"
                ) from None
            raise
    except (UsageError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
