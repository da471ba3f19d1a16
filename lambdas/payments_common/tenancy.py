"""Tenant binding: the merchant is the one the authorizer authenticated, never the body's word.

The REQUEST authorizer puts ``merchant_id`` and ``key_id`` in ``requestContext.authorizer``.
A body ``merchant_id`` that differs is refused with 403 ``merchant_mismatch`` (nothing read or
written); idempotency records and payment ids are scoped by the authenticated merchant, so two
merchants using the same ``Idempotency-Key`` get two independent payments.
"""

from __future__ import annotations

import re
from typing import Any

from payments_common.payment_request import ParsedRequest, RequestError

#: What the authorizer may put in the context (the merchant id rule of the API).
_MERCHANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def authenticated_merchant(event: Any) -> str | None:
    """``requestContext.authorizer.merchant_id`` when present and well formed."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    merchant = authorizer.get("merchant_id") if isinstance(authorizer, dict) else None
    return merchant if isinstance(merchant, str) and _MERCHANT_ID.fullmatch(merchant) else None


def require_merchant(event: Any) -> str:
    """The authenticated merchant; 401 when the authorizer gave none (a route without the authorizer)."""
    merchant = authenticated_merchant(event)
    if merchant is None:
        raise RequestError("unauthenticated", "no authenticated merchant", "Authorization", status=401)
    return merchant


def bind(request: ParsedRequest, merchant: str) -> None:
    """Refuse a body that names another merchant (403; the value is not echoed)."""
    if request.payment.merchant_id != merchant:
        raise RequestError(
            "merchant_mismatch", "merchant_id is not the merchant of this API key", "merchant_id", status=403
        )


def idempotency_data(request: ParsedRequest, merchant: str) -> dict[str, Any]:
    """What Powertools idempotency hashes: the key scoped by the merchant, and the request."""
    data = request.idempotency_data()
    data["idempotency_key"] = f"{merchant}\n{request.idempotency_key}"
    return data
