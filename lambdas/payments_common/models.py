"""Pydantic v2 models of what the functions receive.

Plain ``pydantic.BaseModel`` (the class Powertools parser re-exports): importing
``aws_lambda_powertools.utilities.parser`` loads every event model it ships, ~40 ms of
cold start the API functions do not need. The orchestrator uses Powertools ``parse``.

Messages never echo input values: errors name the field and the rule only, so a card
number typed into the wrong field can never come back in a response or a log line.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from payments_common.currencies import MINOR_UNITS
from payments_common.ids import is_payment_id

#: Largest accepted amount, in major units of any currency (exclusive).
MAX_AMOUNT = Decimal("1000000000000")
_AMOUNT_STRING = re.compile(r"^[0-9]{1,20}(?:\.[0-9]{1,20})?\Z")
MERCHANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
CARD_TOKEN_PATTERN = r"^tok_[A-Za-z0-9_]{4,64}$"  # noqa: S105 - a pattern, not a secret


def _amount(value: Any) -> Decimal:
    """A positive decimal from a JSON number (parsed as Decimal/int) or a plain decimal string."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise PydanticCustomError("amount_type", 'must be a decimal string such as "10.50" or a JSON number')
    if isinstance(value, str):
        if not _AMOUNT_STRING.match(value):
            raise PydanticCustomError("amount_format", 'must be digits with an optional decimal point, e.g. "10.50"')
        value = Decimal(value)
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0:
        raise PydanticCustomError("amount_not_positive", "must be greater than zero")
    if amount >= MAX_AMOUNT:
        raise PydanticCustomError("amount_too_large", "must be less than 1000000000000")
    return amount


class PaymentRequest(BaseModel):
    """Body of ``POST /payments``. Unknown fields are refused rather than silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    amount: Decimal
    currency: str
    merchant_id: str = Field(pattern=MERCHANT_ID_PATTERN)
    card_token: str = Field(pattern=CARD_TOKEN_PATTERN)

    @field_validator("amount", mode="before")
    @classmethod
    def _check_amount(cls, value: Any) -> Decimal:
        return _amount(value)

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if value not in MINOR_UNITS:
            raise PydanticCustomError("currency_unsupported", "must be a supported ISO 4217 code such as USD")
        return value

    @property
    def minor_units(self) -> int:
        """Digits after the decimal point the currency allows."""
        return MINOR_UNITS[self.currency]

    def canonical_amount(self) -> str:
        """The amount written with exactly the currency's minor units (``10.1`` USD -> ``"10.10"``)."""
        try:
            return str(self.amount.quantize(Decimal(1).scaleb(-self.minor_units)))
        except InvalidOperation as exc:  # pragma: no cover - bounds are checked before
            raise ValueError("amount out of range") from exc

    def canonical(self) -> dict[str, str]:
        """What identifies the request: two bodies with the same canonical form are the same payment."""
        return {
            "amount": self.canonical_amount(),
            "currency": self.currency,
            "merchant_id": self.merchant_id,
            "card_token": self.card_token,
        }


class ProcessingMessage(BaseModel):
    """Body of a processing-queue message. Extra fields are ignored (forward compatible)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    payment_id: str

    @field_validator("payment_id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not is_payment_id(value):
            raise PydanticCustomError("payment_id_format", "must be a UUID")
        return value


class ManualAction(BaseModel):
    """An operator's request to the failover orchestrator."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["failover", "failback"]
    #: failover: the region to move away from; failback: the region to bring back.
    region: str
    dry_run: bool = False
    reason: str = Field(default="", max_length=500)


class AlarmStateChange(BaseModel):
    """The JSON CloudWatch puts in the ``Message`` of an alarm's SNS notification (fields used here)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    AlarmName: str = Field(min_length=1, max_length=255)
    NewStateValue: Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
    StateChangeTime: AwareDatetime
    AlarmArn: str = Field(pattern=r"^arn:aws[a-z-]*:cloudwatch:[a-z0-9-]+:[0-9]{12}:alarm:.+$")

    @property
    def region(self) -> str:
        """The alarm's region, from its ARN: the region that cannot take payments."""
        return self.AlarmArn.split(":")[3]
