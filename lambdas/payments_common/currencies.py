"""ISO 4217 minor units of the currencies this API accepts (code -> digits after the point)."""

from __future__ import annotations

from types import MappingProxyType

MINOR_UNITS = MappingProxyType(
    {
        # two decimals
        "AED": 2,
        "AUD": 2,
        "BRL": 2,
        "CAD": 2,
        "CHF": 2,
        "CNY": 2,
        "CZK": 2,
        "DKK": 2,
        "EUR": 2,
        "GBP": 2,
        "HKD": 2,
        "HUF": 2,
        "ILS": 2,
        "INR": 2,
        "MXN": 2,
        "NOK": 2,
        "NZD": 2,
        "PLN": 2,
        "SAR": 2,
        "SEK": 2,
        "SGD": 2,
        "TRY": 2,
        "USD": 2,
        "ZAR": 2,
        # no minor unit
        "CLP": 0,
        "ISK": 0,
        "JPY": 0,
        "KRW": 0,
        "PYG": 0,
        "UGX": 0,
        "VND": 0,
        "XAF": 0,
        "XOF": 0,
        # three decimals
        "BHD": 3,
        "JOD": 3,
        "KWD": 3,
        "OMR": 3,
        "TND": 3,
    }
)
