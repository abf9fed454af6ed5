"""Exact conversion between venue decimal strings and int64 fixed-point mantissas.

A price or size is an int64 `mantissa` with a per-instrument `scale`: value =
mantissa / 10**scale. Conversion never rounds: "0.12345" at scale 4 is an error,
"0.12340000" at scale 4 is 1234. No float anywhere on this path.
"""

from __future__ import annotations

from .errors import DecimalError

INT64_MAX = (1 << 63) - 1
_POW10 = [10**i for i in range(19)]


def to_mantissa(text: str | bytes, scale: int) -> int:
    """Return the exact mantissa of decimal `text` at `scale` (0..18); DecimalError if none.

    Accepts an optional leading '-' or '+', ASCII digits and at most one '.'. Digits
    beyond `scale` must be zeros. The result must fit in int64.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise DecimalError(f"decimal string is not ASCII: {text!r}") from None
    if not 0 <= scale <= 18:
        raise DecimalError(f"scale must be in 0..18: scale={scale}")
    body = text
    neg = False
    if body[:1] in ("-", "+"):
        neg = body[0] == "-"
        body = body[1:]
    whole, dot, frac = body.partition(".")
    if not (whole or frac) or not (whole.isascii() and (not whole or whole.isdigit())) \
            or not (frac.isascii() and (not frac or frac.isdigit())):
        raise DecimalError(f"not a decimal string: {text!r}")
    if len(frac) > scale:
        extra = frac[scale:]
        if extra.strip("0"):
            raise DecimalError(f"more precision than scale {scale}: {text!r}")
        frac = frac[:scale]
    mantissa = int(whole or "0") * _POW10[scale] + (int(frac) * _POW10[scale - len(frac)] if frac else 0)
    if mantissa > INT64_MAX:
        raise DecimalError(f"too large for int64 at scale {scale}: {text!r}")
    return -mantissa if neg else mantissa


def to_decimal(mantissa: int, scale: int) -> str:
    """Return the canonical decimal string: no exponent, no trailing zeros, no bare '.'."""
    mantissa = int(mantissa)
    sign = "-" if mantissa < 0 else ""
    digits = str(abs(mantissa))
    if scale == 0:
        return sign + digits
    digits = digits.rjust(scale + 1, "0")
    whole, frac = digits[:-scale], digits[-scale:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else sign + whole


def to_decimal_fixed(mantissa: int, scale: int) -> str:
    """Return the decimal string with exactly `scale` fraction digits (venue style)."""
    mantissa = int(mantissa)
    sign = "-" if mantissa < 0 else ""
    digits = str(abs(mantissa)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}" if scale else sign + digits


def rescale(mantissa: int, from_scale: int, to_scale: int) -> int:
    """Exactly move a mantissa to another scale; DecimalError if precision would be lost."""
    if to_scale >= from_scale:
        return mantissa * _POW10[to_scale - from_scale]
    q, r = divmod(mantissa, _POW10[from_scale - to_scale])
    if r:
        raise DecimalError(f"mantissa {mantissa} at scale {from_scale} does not fit scale {to_scale}")
    return q
