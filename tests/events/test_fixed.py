"""Decimal strings <-> int64 fixed point: exact both ways, errors instead of rounding."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import DecimalError, rescale, to_decimal, to_decimal_fixed, to_mantissa

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("text,scale,mantissa", [
    ("0.01000000", 2, 1), ("30123.5", 2, 3012350), ("-0.005", 3, -5), ("+7", 0, 7),
    ("42", 8, 4_200_000_000), (".5", 1, 5), ("5.", 1, 50), ("0", 18, 0),
    ("92233720368.54775807", 8, (1 << 63) - 1),
])
def test_venue_strings_convert_exactly(text, scale, mantissa):
    assert to_mantissa(text, scale) == mantissa
    assert to_mantissa(text.encode(), scale) == mantissa


@pytest.mark.parametrize("text,scale,why", [
    ("0.123", 2, "more precision"), ("92233720368.54775808", 8, "too large"),
    ("1e5", 2, "not a decimal"), ("1_000", 0, "not a decimal"), (" 1", 0, "not a decimal"),
    ("", 2, "not a decimal"), (".", 2, "not a decimal"), ("--1", 0, "not a decimal"),
    ("1.2.3", 2, "not a decimal"), ("١٢", 0, "not a decimal"), ("NaN", 2, "not a decimal"),
])
def test_bad_or_inexact_strings_are_errors_quoting_the_input(text, scale, why):
    with pytest.raises(DecimalError, match=why):
        to_mantissa(text, scale)


def test_canonical_and_fixed_renderings():
    assert to_decimal(3012350, 2) == "30123.5"
    assert to_decimal(100, 2) == "1"
    assert to_decimal(-5, 3) == "-0.005"
    assert to_decimal(0, 8) == "0"
    assert to_decimal_fixed(1, 8) == "0.00000001"
    assert to_decimal_fixed(-1500, 3) == "-1.500"


def test_rescale_is_exact_or_refuses():
    assert rescale(15, 1, 3) == 1500
    assert rescale(1500, 3, 1) == 15
    with pytest.raises(DecimalError):
        rescale(1501, 3, 1)


scales = st.integers(0, 18)


@given(st.integers(-(1 << 63) + 1, (1 << 63) - 1), scales)
def test_mantissa_to_string_and_back_is_the_identity(m, scale):
    assert to_mantissa(to_decimal(m, scale), scale) == m
    assert to_mantissa(to_decimal_fixed(m, scale), scale) == m


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8,
                   min_value=Decimal("-92233720368"), max_value=Decimal("92233720368")), scales)
def test_conversion_agrees_with_decimal_arithmetic(d, scale):
    text = format(d, "f")
    exact = d * (Decimal(10) ** scale)
    if exact != exact.to_integral_value() or abs(exact) > (1 << 63) - 1:
        with pytest.raises(DecimalError):
            to_mantissa(text, scale)
    else:
        assert to_mantissa(text, scale) == int(exact)
        assert Decimal(to_decimal(int(exact), scale)) == d


@given(st.text(max_size=30))
def test_no_string_crashes_the_parser(text):
    try:
        to_mantissa(text, 8)
    except DecimalError:
        pass
