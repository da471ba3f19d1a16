"""Payment ids: UUIDs in canonical lowercase form."""

from __future__ import annotations

import uuid
from typing import Any


def is_payment_id(value: Any) -> bool:
    """Whether ``value`` is a payment id: a UUID in canonical lowercase form."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
